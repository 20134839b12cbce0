#include "agent/cli/local_run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "agent/cli/cli.h"
#include "agent/cli/console_view.h"
#include "agent/egress/egress_grant.h"
#include "agent/runner/cache_store.h"
#include "agent/runner/command_files.h"
#include "agent/runner/job_image.h"
#include "agent/runner/remote_actions.h"
#include "agent/runner/mirror_checkout.h"
#include "agent/runner/prestarted_sandbox.h"
#include "agent/runner/run_engine.h"
#include "agent/runner/secret_masker.h"
#include "git/local_repo.h"
#include "scheduler/plan.h"
#include "scheduler/workflow_loader.h"
#include "git/mirror_cache.h"
#include "sandbox/image_presets.h"
#include "sandbox/image_store.h"
#include "sandbox/docker_backend.h"
#include "sandbox/runsc_backend.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kZeroSha(40, '0');

void error(const std::string& message) { std::cerr << "sandci run: " << message << "\n"; }

std::string run_id_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d-%02d%02d%02d-%d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(getpid()));
  return buf;
}

// Removes a folder when the run ends, however it ends.
struct RemoveOnExit {
  fs::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

std::expected<void, std::string> copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) return std::unexpected("cannot copy " + from.string() + ": " + ec.message());
  return {};
}

// The folder the user named, inside its repository: "" when it is the top level.
fs::path folder_in_repository(const fs::path& dir, const std::expected<git::LocalHead, git::Error>& head) {
  if (!head) return {};
  std::error_code ec;
  const fs::path top = fs::weakly_canonical(head->workdir, ec);
  const fs::path inner = fs::weakly_canonical(dir, ec).lexically_relative(top);
  return inner == "." || inner.empty() ? fs::path() : inner;
}

// The commit, ref and name of what runs, before anything is copied.
std::expected<RunSource, std::string> describe_source(const LocalRunOptions& options, const fs::path& dir,
                                                     const std::expected<git::LocalHead, git::Error>& head,
                                                     const fs::path& inner) {
  RunSource source;
  const fs::path top = head ? head->workdir : dir;
  // A project in a subfolder of a larger repository runs with that folder as its
  // workspace, and is named after it.
  source.repository = "local/" + (inner.empty() ? top : dir).filename().string();
  if (!options.repository.empty())
    source.repository = options.repository;
  else if (head && inner.empty())
    if (auto named = repository_from_url(head->origin_url)) source.repository = *named;
  if (head) {
    source.sha = head->sha;
    source.ref = head->ref;
  }
  if (!inner.empty())
    std::cout << "sandci run: " << inner.string() << " is a folder inside the repository " << top.string()
              << ": running its workflows with it as the workspace ("
              << (options.dirty ? "its files as they are" : "its committed content at HEAD") << ")\n";
  if (!options.dirty && !head)
    return std::unexpected(head.error().to_string() +
                           "\n  (sandci run takes the committed HEAD; use --dirty to run the files as they are)");
  return source;
}

// Writes the workspace (the working tree's copy with --dirty, else the commit's
// checkout from the mirror cache) and sets source.workspace and object_dirs.
std::expected<void, std::string> write_workspace(const LocalRunOptions& options, const fs::path& dir,
                                                 const std::expected<git::LocalHead, git::Error>& head,
                                                 const fs::path& inner, const fs::path& run_dir,
                                                 const fs::path& state_dir, const std::atomic<bool>& cancel,
                                                 RunSource& source) {
  source.workspace = run_dir / "workspace";
  if (options.dirty) return copy_tree(dir, source.workspace);
  // The commit goes through the same mirror cache as the daemon's checkouts.
  git::MirrorCache cache(state_dir / "git");
  git::CheckoutOptions checkout;
  checkout.submodules = false;
  checkout.fetch.cancel = &cancel;  // SIGINT/SIGTERM stop a long first fetch
  const fs::path checkout_dir = inner.empty() ? source.workspace : run_dir / "checkout";
  auto result = cache.checkout(head->workdir.string(), head->sha, checkout_dir, checkout);
  if (!result) return std::unexpected("checkout of " + head->sha + ": " + result.error().to_string());
  source.object_dirs = result->object_dirs;
  if (!inner.empty()) {
    if (!fs::is_directory(checkout_dir / inner))
      return std::unexpected(inner.string() + " is not in the commit HEAD (" + head->sha.substr(0, 12) +
                             "): commit it, or use --dirty to run the files as they are");
    source.workspace = checkout_dir / inner;
  }
  return {};
}

// Where actions/checkout fetches a repository in `sandci run`: its own from the
// local repository; another from --repository-base, else from a sibling folder.
std::expected<RepositoryRemote, std::string> local_remote(const LocalRunOptions& options, const RunSource& source,
                                                          std::string_view name) {
  auto head = git::read_local_head(fs::absolute(options.dir));
  if (name == source.repository) {
    if (!head) return std::unexpected("the local repository cannot be read: " + head.error().to_string());
    return RepositoryRemote{head->workdir.string(), {}, false};
  }
  if (!options.repository_base.empty()) {
    std::string base = options.repository_base;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return RepositoryRemote{base + "/" + std::string(name), {}, false};
  }
  const std::string short_name(name.substr(name.find('/') + 1));
  if (head && !short_name.empty() && short_name.find("..") == std::string::npos) {
    std::string top = head->workdir.string();
    while (top.size() > 1 && top.back() == '/') top.pop_back();  // libgit2's workdir ends with '/'
    const fs::path sibling = fs::path(top).parent_path() / short_name;
    if (git::read_local_head(sibling)) return RepositoryRemote{sibling.string(), {}, false};
  }
  return std::unexpected("repository " + std::string(name) +
                         ": sandci run checks out another repository from a sibling folder (../" + short_name +
                         ") or from --repository-base URL-or-folder (then <base>/" + std::string(name) +
                         "); neither is given");
}

std::string normalize_ref(const std::string& ref) {
  if (ref.empty() || ref.rfind("refs/", 0) == 0) return ref;
  return "refs/heads/" + ref;
}

json event_payload(const LocalRunOptions& options, const RunSource& source) {
  json repo = {{"full_name", source.repository},
               {"name", source.repository.substr(source.repository.find('/') + 1)},
               {"owner", {{"login", "local"}}}};
  if (options.event == "pull_request" || options.event == "pull_request_target")
    return {{"action", "opened"},
            {"number", 1},
            {"pull_request",
             {{"number", 1},
              {"head", {{"sha", source.sha}, {"ref", short_ref_name(source.ref)}}},
              {"base", {{"ref", options.base}}}}},
            {"repository", repo}};
  if (options.event == "schedule") return {{"schedule", options.schedule}, {"repository", repo}};
  if (options.event == "workflow_dispatch") {
    json inputs = json::object();
    for (const auto& [k, v] : options.inputs) inputs[k] = v;
    return {{"ref", source.ref}, {"inputs", inputs}, {"repository", repo}};
  }
  return {{"ref", source.ref}, {"before", kZeroSha}, {"after", source.sha},
          {"head_commit", {{"id", source.sha}}}, {"repository", repo}};
}

RunTrigger local_trigger(const LocalRunOptions& options, const RunSource& source) {
  RunTrigger trigger;
  trigger.event = options.event;
  trigger.action = "opened";
  trigger.base_ref = options.base;
  trigger.head_ref =
      options.event == "pull_request" || options.event == "pull_request_target" ? short_ref_name(source.ref) : "";
  trigger.payload = event_payload(options, source);
  trigger.inputs = options.inputs;
  return trigger;
}

std::expected<NameValueList, std::string> collect_secrets(const LocalRunOptions& options) {
  NameValueList secrets = options.secrets;
  for (const auto& file : options.secrets_files) {
    auto read = read_secrets_file(file);
    if (!read) return std::unexpected(read.error());
    secrets.insert(secrets.end(), read->begin(), read->end());
  }
  return secrets;
}

// --actions-source, else $SANDCI_ACTIONS_SOURCE, else the public GitHub.
std::string actions_source(const LocalRunOptions& options) {
  if (!options.actions_source.empty()) return options.actions_source;
  if (const char* env = std::getenv("SANDCI_ACTIONS_SOURCE"); env && *env) return env;
  return std::string(kDefaultActionsSource);
}

// Which commit each remote action ran at, after the run (the live view owns the
// terminal while it runs).
void print_resolutions(const std::vector<ActionResolution>& resolutions) {
  for (const auto& r : resolutions) {
    std::cout << "action " << r.repository << "@" << r.ref << ": commit " << r.commit << " from " << r.url;
    if (r.from_cache) std::cout << " (cached copy: the source could not be reached: " << r.problem << ")";
    std::cout << "\n";
  }
}

// The console view of each workflow, kept alive until its summary is printed.
// Workflows run side by side, so the hooks are called from several threads.
class ConsoleHooks {
 public:
  // `commit`: "commit d7f89538abdf (refs/heads/main)", said with each workflow.
  ConsoleHooks(bool live, std::string commit) : live_(live), commit_(std::move(commit)) {}

  WorkflowHooks hooks(std::atomic<bool>& any_failed) {
    WorkflowHooks hooks;
    hooks.started = [this](const PlannedWorkflow& planned) -> scheduler::RunObserver* {
      std::lock_guard lock(mutex_);
      // One write: another workflow's view prints its jobs' lines meanwhile,
      // and a line written in pieces came out torn between them.
      const std::string line = "workflow " + display_name(planned) + ": " + std::to_string(planned.plan.size()) +
                               (planned.plan.size() == 1 ? " job" : " jobs") + ", " + commit_ + "\n";
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
      auto& view = views_[planned.file];
      view = std::make_unique<ConsoleView>(planned.plan, live_, stdout);
      return view.get();
    };
    hooks.finished = [this, &any_failed](const PlannedWorkflow& planned, const scheduler::RunReport& report) {
      std::unique_ptr<ConsoleView> view;
      {
        std::lock_guard lock(mutex_);
        view = std::move(views_[planned.file]);
      }
      // One summary at a time: they are several lines each.
      std::lock_guard lock(summary_mutex_);
      view->finish(report.result == scheduler::Result::cancelled);
      view.reset();
      if (report.result == scheduler::Result::failure) any_failed = true;
    };
    return hooks;
  }

  static std::string display_name(const PlannedWorkflow& planned) {
    return planned.workflow->name.empty() ? planned.file : planned.workflow->name + " (" + planned.file + ")";
  }

 private:
  bool live_;
  std::string commit_;
  std::mutex mutex_, summary_mutex_;
  std::map<std::string, std::unique_ptr<ConsoleView>> views_;  // by workflow file
};

// A workflow that cannot run, said before the others start and again at the end.
void print_broken(const std::vector<BrokenWorkflow>& broken) {
  for (const auto& workflow : broken) {
    std::cerr << "workflow " << workflow.name << " (" << workflow.file << "): cannot run, failed:\n";
    for (const auto& message : workflow.messages) std::cerr << "  " << message << "\n";
  }
}

// Keeps the newest `keep` run folders (their names sort by start time) and the
// current one; the rest go.
void prune_runs(const fs::path& runs_dir, std::size_t keep, const fs::path& current) {
  std::vector<fs::path> runs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runs_dir, ec))
    if (entry.is_directory(ec) && entry.path() != current) runs.push_back(entry.path());
  std::sort(runs.begin(), runs.end(), std::greater<>());
  const std::size_t others_kept = keep == 0 ? 0 : keep - 1;
  for (std::size_t i = others_kept; i < runs.size(); ++i) fs::remove_all(runs[i], ec);
}

}  // namespace

std::optional<std::string> repository_from_url(std::string_view url) {
  std::string text(url);
  while (!text.empty() && text.back() == '/') text.pop_back();
  if (text.ends_with(".git")) text.resize(text.size() - 4);
  // scp-like `git@host:owner/name`: the part after the first ':' is the path.
  if (text.find("://") == std::string::npos)
    if (auto colon = text.find(':'); colon != std::string::npos && text.find('/') > colon) text = text.substr(colon + 1);
  const auto last = text.rfind('/');
  if (last == std::string::npos || last == 0) return std::nullopt;
  const auto before = text.rfind('/', last - 1);
  const std::string owner = text.substr(before == std::string::npos ? 0 : before + 1, last - (before == std::string::npos ? 0 : before + 1));
  const std::string name = text.substr(last + 1);
  auto valid = [](const std::string& part) {
    return !part.empty() && part != "." && part != ".." &&
           part.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
               std::string::npos;
  };
  if (!valid(owner) || !valid(name)) return std::nullopt;
  return owner + "/" + name;
}

std::expected<NameValueList, std::string> read_secrets_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::unexpected("cannot read secrets file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse_secrets_file(text.str());
  if (!parsed) return std::unexpected(file.string() + ": " + parsed.error().to_string());
  return *parsed;
}

std::expected<std::map<std::string, std::string>, std::string> read_labels_file(const fs::path& file) {
  std::map<std::string, std::string> labels;
  std::ifstream in(file);
  if (!in) return labels;  // no file: no mapping, every job gets the default image
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    auto trim = [](std::string text) {
      const auto first = text.find_first_not_of(" \t\r");
      if (first == std::string::npos) return std::string();
      return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
    };
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos || trim(line.substr(0, eq)).empty() || trim(line.substr(eq + 1)).empty())
      return std::unexpected(file.string() + ":" + std::to_string(number) + ": expected LABEL = IMAGE");
    labels[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return labels;
}

namespace {

// --event schedule without --schedule: the one cron line the workflows have.
std::expected<std::string, std::string> pick_schedule(const fs::path& workspace) {
  std::vector<std::string> crons;
  for (const auto& workflow : scheduler::load_workflows(workspace).workflows)
    if (workflow.on.schedule)
      for (const auto& entry : workflow.on.schedule->crons)
        if (std::find(crons.begin(), crons.end(), entry.cron) == crons.end()) crons.push_back(entry.cron);
  if (crons.size() <= 1) return crons.empty() ? std::string() : crons.front();
  std::string list;
  for (const auto& cron : crons) list += "\n  --schedule '" + cron + "'";
  return std::unexpected("the workflows have several schedules: pick one with" + list);
}


// An opened backend whose checks run beside the first sandbox's start instead
// of before it: whether runsc runs (`checked`: always fine for docker, whose
// open asks the engine already), and the reaping of what crashed runs left
// (`reaped`, waited for when this goes; it touches dead owners' sandboxes only).
struct OpenedBackend {
  std::unique_ptr<sandbox::SandboxBackend> backend;
  std::future<std::expected<void, std::string>> checked;
  std::future<void> reaped;
};

std::expected<OpenedBackend, std::string> open_backend(const LocalRunOptions& options, const fs::path& state_dir) {
  OpenedBackend opened;
  if (options.backend == "docker") {
    sandbox::DockerOptions docker;
    docker.socket = options.docker_socket;
    docker.egress_runtime = options.docker_egress_runtime;
    auto engine = sandbox::DockerBackend::open(docker);
    if (!engine) return std::unexpected("cannot use the Docker engine: " + engine.error().message);
    if (const auto& failed = (*engine)->startup_reap_error(); !failed.empty())
      std::cerr << "sandci run: warning: cleaning up after an earlier run: " << failed << "\n";
    opened.backend = std::move(*engine);
    std::promise<std::expected<void, std::string>> fine;
    fine.set_value({});
    opened.checked = fine.get_future();
    return opened;
  }
  sandbox::RunscOptions runsc;
  runsc.state_dir = (state_dir / "sandbox").string();
  runsc.check_on_open = false;
  auto backend = sandbox::RunscBackend::open(runsc);
  if (!backend) return std::unexpected("cannot use runsc: " + backend.error().message);
  opened.checked = std::async(std::launch::async, [runsc = backend->get()]() -> std::expected<void, std::string> {
    if (auto checked = runsc->check_runsc(); !checked)
      return std::unexpected("cannot use runsc: " + checked.error().message);
    return {};
  });
  // A crashed run's leftovers that could not be removed do not stop this run.
  opened.reaped = std::async(std::launch::async, [runsc = backend->get()] {
    for (const auto& failed : runsc->reap_stale().errors)
      std::cerr << "sandci run: warning: cleaning up after an earlier run: " << failed << "\n";
  });
  opened.backend = std::move(*backend);
  return opened;
}

// The workflow files of what runs, before the workspace is written: with
// --dirty from the folder, else from the commit's objects (no checkout needed).
// Only the first workflow folder that exists, as the loader reads them.
std::vector<std::pair<std::string, std::string>> workflow_texts(const LocalRunOptions& options, const fs::path& dir,
                                                                const git::LocalHead* head) {
  constexpr std::size_t kMaxBytes = scheduler::LoaderLimits{}.max_file_bytes;
  auto is_workflow = [](const std::string& name) {
    const std::string ext = fs::path(name).extension().string();
    return ext == ".yml" || ext == ".yaml";
  };
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& folder : scheduler::workflow_directories()) {
    if (options.dirty) {
      std::error_code ec;
      if (!fs::is_directory(dir / folder, ec)) continue;
      for (const auto& entry : fs::directory_iterator(dir / folder, ec)) {
        const std::string name = entry.path().filename().string();
        if (!is_workflow(name) || !entry.is_regular_file(ec) || entry.file_size(ec) > kMaxBytes) continue;
        std::ifstream in(entry.path(), std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        texts.emplace_back(folder + "/" + name, text.str());
      }
      return texts;
    }
    auto files = git::read_folder_at(head->workdir, head->sha, folder, kMaxBytes);
    if (!files) return {};
    if (!*files) continue;
    for (auto& [name, text] : **files)
      if (is_workflow(name)) texts.emplace_back(folder + "/" + name, std::move(text));
    return texts;
  }
  return texts;
}

// The image most jobs of the workflows run in, among jobs whose sandbox a
// sandbox started ahead can be (planned_jobs_by_image); nullopt when none. A
// guess made before the workspace exists: the run still loads and checks its
// workflows from the checkout, and a sandbox no job takes is destroyed unused.
std::optional<std::string> likely_image(const std::vector<std::pair<std::string, std::string>>& texts,
                                        const std::string& default_image, const LabelMap& labels) {
  std::map<std::string, std::size_t> counts;
  for (const auto& [file, text] : texts) {
    scheduler::Diagnostics ignored;
    auto workflow = scheduler::parse_workflow(text, file, ignored);
    if (!workflow) continue;
    auto plan = scheduler::Plan::build(*workflow);
    if (!plan) continue;
    for (const auto& [image, jobs] : planned_jobs_by_image(*plan, default_image, labels)) counts[image] += jobs;
  }
  std::optional<std::string> best;
  std::size_t most = 0;
  for (const auto& [image, jobs] : counts)
    if (jobs > most) best = image, most = jobs;
  return best;
}

// The first job's sandbox, started before the workspace is written so that its
// start (most of a short run) overlaps the checkout, the workflow load and the
// planning, as the daemon does (PrestartedSandbox). Its spec is a job's of the
// likely image with the built-in actions only: the run's workspace folder (the
// checkout is written into the very folder it mounts), the mirror's objects,
// the event payload jobs mount. None when --warm 0, with egress (each job has
// its own network namespace), for a folder inside a repository, for a schedule
// still to be picked, or when the mirror does not exist yet (the first run).
std::unique_ptr<PrestartedSandbox> prestart_first_job(const LocalRunOptions& options, const fs::path& dir,
                                                      const git::LocalHead* head, const fs::path& state_dir,
                                                      const fs::path& run_dir, const RunTrigger& trigger,
                                                      sandbox::SandboxBackend& backend, const LabelMap& labels,
                                                      const ImageSource& images, std::string& image_name) {
  if (options.warm == 0 || !options.allow_hosts.empty()) return nullptr;
  std::vector<fs::path> object_dirs;
  std::error_code ec;
  if (!options.dirty) {
    const fs::path objects = git::MirrorCache(state_dir / "git").mirror_path(head->workdir.string()) / "objects";
    if (!fs::is_directory(objects, ec)) return nullptr;
    object_dirs.push_back(objects);
  }
  auto name = likely_image(workflow_texts(options, dir, head), options.default_image, labels);
  if (!name) return nullptr;
  auto image = images(*name);
  if (!image) return nullptr;  // the job says why
  const fs::path workspace = run_dir / "workspace";
  fs::create_directories(workspace, ec);  // the workspace is written into it (an empty folder is fine)
  if (ec) return nullptr;
  auto event_file = write_event_file(run_dir / "scratch", trigger.payload.dump());
  if (!event_file) return nullptr;
  sandbox::ResourceLimits limits;
  limits.memory_bytes = options.memory_mib << 20;
  auto spec = job_sandbox_spec(*image, workspace, object_dirs, *event_file, limits);
  if (!spec) return nullptr;
  spec->name_hint = "first";
  // No slot: `sandci run`'s sandboxes started ahead hold none (its warm pool neither).
  auto first = std::make_unique<PrestartedSandbox>(backend, nullptr);
  if (!first->start(*spec)) return nullptr;
  image_name = *name;
  return first;
}

// The Docker engine gives a job granted egress a network only through a runtime
// of its own (docs/security.md): said before anything starts, not job by job.
std::optional<std::string> docker_egress_problem(const LocalRunOptions& options) {
  if (!options.docker_egress_runtime.empty() && options.backend != "docker")
    return "--docker-egress-runtime applies to --backend docker only";
  if (options.backend == "docker" && !options.allow_hosts.empty() && options.docker_egress_runtime.empty())
    return "--allow-host on --backend docker needs --docker-egress-runtime NAME: the engine's runtime that is runsc "
           "with --network=sandbox (docs/security.md, \"Egress on the Docker backend\")";
  return std::nullopt;
}

}  // namespace

int run_local(const LocalRunOptions& given, std::atomic<bool>& cancel) {
  LocalRunOptions options = given;
  if (options.event != "push" && options.event != "pull_request" && options.event != "workflow_dispatch" &&
      options.event != "pull_request_target" && options.event != "schedule") {
    error("--event must be push, pull_request, pull_request_target, workflow_dispatch or schedule, not '" +
          options.event + "'");
    return kExitUsage;
  }
  if (auto problem = docker_egress_problem(options)) {
    error(*problem);
    return kExitUsage;
  }
  // Secrets first: everything printed from here on is masked.
  auto secrets = collect_secrets(options);
  if (!secrets) {
    error(secrets.error());
    return kExitUsage;
  }
  SecretMasker masker;
  for (const auto& [name, value] : *secrets) masker.add(value);

  // Absolute: libgit2 writes a checkout relative to the repository it opened, not
  // to this process's folder, so `--state-dir state` would point somewhere else.
  const fs::path state_dir =
      fs::absolute(options.state_dir.empty() ? fs::path(sandbox::default_state_dir()) : options.state_dir)
          .lexically_normal();
  // Checked before anything is made, like every other usage error.
  ActionsOptions actions_options;
  actions_options.state_dir = state_dir;
  actions_options.source = actions_source(options);
  if (auto problem = actions_source_problem(actions_options.source)) {
    error("--actions-source: " + *problem);
    return kExitUsage;
  }
  const std::string run_id = run_id_now();
  const fs::path run_dir = state_dir / "runs" / run_id;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    error("cannot create " + run_dir.string() + ": " + ec.message());
    return kExitRunFailed;
  }
  prune_runs(state_dir / "runs", options.keep_runs, run_dir);
  RemoveOnExit remove_workspace{run_dir / "workspace"};
  RemoveOnExit remove_checkout{run_dir / "checkout"};
  RemoveOnExit remove_scratch{run_dir / "scratch"};

  const fs::path dir = fs::absolute(options.dir).lexically_normal();
  if (!fs::is_directory(dir)) {
    error("no such folder: " + dir.string());
    return kExitUsage;
  }
  const auto head = git::read_local_head(dir);
  const fs::path inner = folder_in_repository(dir, head);
  auto source = describe_source(options, dir, head, inner);
  if (!source) {
    error(source.error());
    return kExitUsage;
  }
  source->ref = options.ref.empty() ? (source->ref.empty() ? "refs/heads/main" : source->ref)
                                    : normalize_ref(options.ref);
  // pull_request_target runs the base branch's workflows: its ref is the base branch.
  if (options.event == "pull_request_target" && options.ref.empty()) source->ref = normalize_ref(options.base);
  const bool schedule_to_pick = options.event == "schedule" && options.schedule.empty();

  // The backend, the labels and the first job's sandbox before the workspace is
  // written, so that the sandbox starts while it is (their errors are reported
  // after the workflows', as they always were). The backend's own check runs
  // beside them.
  auto opened = open_backend(options, state_dir);
  sandbox::SandboxBackend* backend = opened ? opened->backend.get() : nullptr;
  sandbox::ImageStore images(state_dir);
  auto labels = read_labels_file(state_dir / "labels.conf");
  if (labels && backend) {
    for (const auto& [label, image] : options.labels) (*labels)[label] = image;
    *labels = with_runner_labels(std::move(*labels), image_present(*backend, images, sandbox::kRunnerImage),
                                 sandbox::kRunnerImage);
  }
  // Declared after the run's folders and the backend: destroyed before them.
  std::unique_ptr<PrestartedSandbox> first_sandbox;
  std::string first_sandbox_image;
  if (backend && labels && inner.empty() && !schedule_to_pick)
    first_sandbox = prestart_first_job(options, dir, head ? &*head : nullptr, state_dir, run_dir,
                                       local_trigger(options, *source), *backend, *labels,
                                       image_source_for(*backend, images), first_sandbox_image);

  if (auto written = write_workspace(options, dir, head, inner, run_dir, state_dir, cancel, *source); !written) {
    if (cancel) {
      error("cancelled while fetching the repository into the mirror cache");
      return kExitCancelled;
    }
    error(written.error());
    return kExitUsage;
  }
  if (schedule_to_pick) {
    auto picked = pick_schedule(source->workspace);
    if (!picked) {
      error(picked.error());
      return kExitUsage;
    }
    options.schedule = *picked;
  }
  const RunTrigger trigger = local_trigger(options, *source);
  // Remote actions and reusable workflows: one commit per ref for the whole run.
  ActionCache action_cache(actions_options);
  RunActionSource actions(action_cache);
  auto prepared = prepare_run(*source, trigger, {options.jobs, options.matrix}, &actions);
  if (!prepared) {
    const bool plain_error = prepared.error().kind != PrepareError::Kind::invalid;
    for (const auto& message : prepared.error().messages)
      plain_error ? error(message) : void(std::cerr << message << "\n");
    return kExitUsage;
  }
  for (const auto& note : prepared->notes) std::cerr << note << "\n";
  print_broken(prepared->broken);
  if (prepared->workflows.empty()) {
    std::cout << "no workflow runs for " << options.event << " of " << source->ref << ":\n";
    for (const auto& reason : prepared->not_triggered) std::cout << "  " << reason << "\n";
    return kExitOk;
  }

  if (!opened) {
    error(opened.error());
    return kExitRunFailed;
  }
  if (auto checked = opened->checked.get(); !checked) {
    error(checked.error());
    return kExitRunFailed;
  }
  if (!labels) {
    error(labels.error());
    return kExitUsage;
  }
  RunEnvironment env;
  env.backend = backend;
  if (first_sandbox) {
    // A sandbox no job can take must not hold memory for the whole run.
    if (plans_job_of_image(*prepared, first_sandbox_image, options.default_image, *labels))
      env.backend = first_sandbox.get();
    else
      first_sandbox->discard();
  }
  env.images = image_source_for(*backend, images);
  env.masker = &masker;
  env.secrets = *secrets;
  env.default_image = options.default_image;
  env.labels = *labels;
  env.limits.memory_bytes = options.memory_mib << 20;
  env.capacity = options.max_parallel ? options.max_parallel : std::max(1u, std::thread::hardware_concurrency());
  env.run_dir = run_dir;
  env.logs_dir = options.logs_dir.empty() ? run_dir / "logs" : options.logs_dir;
  env.run_id = std::to_string(std::time(nullptr));
  JobTimingsLog timings;
  if (options.timings) env.timings = &timings;
  env.warm_sandboxes = options.warm;
  if (!options.allow_hosts.empty()) {
    auto grant = egress::make_grant(options.allow_hosts, options.allow_ports, std::nullopt, 32);
    if (!grant) {
      error("--allow-host: " + grant.error());
      return kExitUsage;
    }
    env.egress = EgressSettings{std::move(*grant), options.egress_hosts_file.string(), {}};
  } else if (!options.allow_ports.empty() || !options.egress_hosts_file.empty()) {
    error("--allow-port and --egress-hosts-file need --allow-host: without a granted host a job has no network");
    return kExitUsage;
  }
  env.actions = &actions;
  CacheStore cache(state_dir / "cache", options.cache_mib << 20);
  env.cache = &cache;
  git::MirrorCache mirrors(state_dir / "git");
  env.checkout = mirror_checkout(mirrors, [&options, &source](std::string_view name) {
    return local_remote(options, *source, name);
  });

  std::atomic<bool> any_failed{false};
  // Two live frames cannot share a terminal: workflows side by side print plain lines.
  const bool live = !options.plain && isatty(STDOUT_FILENO) && prepared->workflows.size() == 1;
  ConsoleHooks console(live,
                       "commit " + source->sha.substr(0, 12) + " (" + source->ref + ")");
  const RunResult result = execute_run(*prepared, *source, trigger, env, cancel, console.hooks(any_failed));
  if (options.timings) std::cout << render_timings(timings.jobs());
  print_resolutions(actions.resolutions());
  std::cout << "logs: " << env.logs_dir.string() << "\n";
  if (fs::exists(run_dir / "artifacts")) std::cout << "artifacts: " << (run_dir / "artifacts").string() << "\n";
  std::cout << "run folder: " << run_dir.string() << " (the newest " << options.keep_runs
            << " are kept; --keep-runs changes it)\n";
  for (const auto& workflow : prepared->broken)
    std::cout << "workflow " << workflow.name << " (" << workflow.file << ") failed: "
              << (workflow.messages.empty() ? std::string("invalid workflow") : workflow.messages.front()) << "\n";
  if (result == RunResult::cancelled) return kExitCancelled;
  return result == RunResult::failure || any_failed ? kExitRunFailed : kExitOk;
}

}  // namespace sandci::agent
