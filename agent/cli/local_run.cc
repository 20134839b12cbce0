#include "agent/cli/local_run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "agent/runner/artifacts.h"
#include "agent/cli/cli.h"
#include "agent/runner/command_files.h"
#include "agent/cli/console_view.h"
#include "agent/runner/sandbox_job_runner.h"
#include "agent/runner/secret_masker.h"
#include "git/local_repo.h"
#include "git/mirror_cache.h"
#include "sandbox/image_store.h"
#include "sandbox/runsc_backend.h"
#include "scheduler/executor.h"
#include "scheduler/matrix.h"
#include "scheduler/plan.h"
#include "scheduler/trigger.h"
#include "scheduler/workflow_loader.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kZeroSha(40, '0');

void error(const std::string& message) { std::cerr << "sandci run: " << message << "\n"; }

// What the run is about: the commit, the ref and the checkout on the host.
struct Source {
  std::string sha = kZeroSha;
  std::string ref;
  std::string repository;  // "local/<folder>"
  fs::path workspace;
  std::vector<fs::path> object_dirs;  // the checkout's alternates, mounted read-only
};

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

std::expected<Source, std::string> prepare_source(const LocalRunOptions& options, const fs::path& run_dir,
                                                  const fs::path& state_dir) {
  Source source;
  fs::path dir = fs::absolute(options.dir).lexically_normal();
  auto head = git::read_local_head(dir);
  fs::path top = head ? head->workdir : dir;
  source.repository = "local/" + top.filename().string();
  if (head) {
    source.sha = head->sha;
    source.ref = head->ref;
  }
  source.workspace = run_dir / "workspace";
  if (options.dirty) {
    if (!fs::is_directory(dir)) return std::unexpected("no such folder: " + dir.string());
    if (auto copied = copy_tree(top, source.workspace); !copied) return std::unexpected(copied.error());
    return source;
  }
  if (!head)
    return std::unexpected(head.error().to_string() +
                           "\n  (sandci run takes the committed HEAD; use --dirty to run the files as they are)");
  // The commit goes through the same mirror cache as the daemon's checkouts.
  git::MirrorCache cache(state_dir / "git");
  git::CheckoutOptions checkout;
  checkout.submodules = false;
  auto result = cache.checkout(head->workdir.string(), head->sha, source.workspace, checkout);
  if (!result) return std::unexpected("checkout of " + head->sha + ": " + result.error().to_string());
  source.object_dirs = result->object_dirs;
  return source;
}

std::string ref_name(const std::string& ref) {
  for (const char* prefix : {"refs/heads/", "refs/tags/", "refs/pull/"})
    if (ref.rfind(prefix, 0) == 0) return ref.substr(std::string_view(prefix).size());
  return ref;
}

std::string normalize_ref(const std::string& ref) {
  if (ref.empty() || ref.rfind("refs/", 0) == 0) return ref;
  return "refs/heads/" + ref;
}

json event_payload(const LocalRunOptions& options, const Source& source, const std::string& ref) {
  json repo = {{"full_name", source.repository},
               {"name", source.repository.substr(source.repository.find('/') + 1)},
               {"owner", {{"login", "local"}}}};
  if (options.event == "pull_request")
    return {{"action", "opened"},
            {"number", 1},
            {"pull_request",
             {{"number", 1},
              {"head", {{"sha", source.sha}, {"ref", ref_name(ref)}}},
              {"base", {{"ref", options.base}}}}},
            {"repository", repo}};
  if (options.event == "workflow_dispatch") {
    json inputs = json::object();
    for (const auto& [k, v] : options.inputs) inputs[k] = v;
    return {{"ref", ref}, {"inputs", inputs}, {"repository", repo}};
  }
  return {{"ref", ref}, {"before", kZeroSha}, {"after", source.sha},
          {"head_commit", {{"id", source.sha}}}, {"repository", repo}};
}

// Keeps `wanted` jobs and every job they need, transitively.
std::expected<void, std::string> keep_jobs(scheduler::Workflow& wf, const std::vector<std::string>& wanted) {
  std::set<std::string> keep;
  std::vector<std::string> todo = wanted;
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    if (!keep.insert(id).second) continue;
    const auto* job = wf.find_job(id);
    if (!job) {
      std::string known;
      for (const auto& j : wf.jobs) known += (known.empty() ? "" : ", ") + j.id;
      return std::unexpected("no job '" + id + "' in " + wf.file + " (jobs: " + known + ")");
    }
    for (const auto& need : job->needs) todo.push_back(need);
  }
  std::erase_if(wf.jobs, [&](const scheduler::Job& job) { return !keep.contains(job.id); });
  return {};
}

// Restricts matrices to key=value: dimension values and include entries that
// disagree are dropped; jobs whose matrix lacks the key are left alone.
std::expected<void, std::string> filter_matrix(scheduler::Workflow& wf,
                                               const std::vector<std::pair<std::string, std::string>>& filters) {
  for (auto& job : wf.jobs) {
    if (!job.strategy) continue;
    auto& matrix = job.strategy->matrix;
    for (const auto& [key, value] : filters) {
      auto matches = [&](const json& v) { return scheduler::matrix_value_display(v) == value; };
      for (auto& [dim, values] : matrix.dimensions) {
        if (dim != key) continue;
        std::erase_if(values, [&](const json& v) { return !matches(v); });
        if (values.empty())
          return std::unexpected("--matrix " + key + "=" + value + " matches no value of job '" + job.id + "'");
      }
      std::erase_if(matrix.include, [&](const json& entry) {
        return entry.is_object() && entry.contains(key) && !matches(entry[key]);
      });
    }
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> base_env(const Source& source, const std::string& ref,
                                                          const LocalRunOptions& options,
                                                          const scheduler::Workflow& wf,
                                                          const std::string& run_number) {
  std::string ref_type = ref.rfind("refs/tags/", 0) == 0 ? "tag" : "branch";
  return {
      {"CI", "true"},
      {"GITHUB_ACTIONS", "true"},
      {"SANDCI", "true"},
      {"GITHUB_WORKSPACE", "/workspace"},
      {"GITHUB_SHA", source.sha},
      {"GITHUB_REF", ref},
      {"GITHUB_REF_NAME", ref_name(ref)},
      {"GITHUB_REF_TYPE", ref_type},
      {"GITHUB_REPOSITORY", source.repository},
      {"GITHUB_REPOSITORY_OWNER", "local"},
      {"GITHUB_EVENT_NAME", options.event},
      {"GITHUB_RUN_ID", run_number},
      {"GITHUB_RUN_NUMBER", "1"},
      {"GITHUB_RUN_ATTEMPT", "1"},
      {"GITHUB_ACTOR", "sandci"},
      {"GITHUB_WORKFLOW", wf.name.empty() ? fs::path(wf.file).filename().string() : wf.name},
      {"RUNNER_OS", "Linux"},
      {"RUNNER_ARCH", "X64"},
      {"RUNNER_NAME", "sandci"},
  };
}

scheduler::EvalContext base_context(const Source& source, const std::string& ref,
                                    const LocalRunOptions& options, const json& payload,
                                    const std::vector<std::pair<std::string, std::string>>& secrets,
                                    const std::string& run_number, const scheduler::Workflow& wf) {
  scheduler::EvalContext ctx;
  json secrets_json = json::object();
  for (const auto& [k, v] : secrets) secrets_json[k] = v;
  json inputs = json::object();
  if (wf.on.workflow_dispatch)
    for (const auto& input : wf.on.workflow_dispatch->inputs)
      if (input.default_value) inputs[input.name] = *input.default_value;
  for (const auto& [k, v] : options.inputs) inputs[k] = v;
  ctx.contexts = {
      {"github",
       {{"event_name", options.event},
        {"event", payload},
        {"ref", ref},
        {"ref_name", ref_name(ref)},
        {"ref_type", ref.rfind("refs/tags/", 0) == 0 ? "tag" : "branch"},
        {"sha", source.sha},
        {"repository", source.repository},
        {"repository_owner", "local"},
        {"workspace", "/workspace"},
        {"run_id", run_number},
        {"run_number", "1"},
        {"run_attempt", "1"},
        {"actor", "sandci"},
        {"workflow", wf.name},
        {"base_ref", options.event == "pull_request" ? options.base : ""},
        {"head_ref", options.event == "pull_request" ? ref_name(ref) : ""},
        {"server_url", ""}}},
      {"env", json::object()},
      {"vars", json::object()},
      {"secrets", secrets_json},
      {"inputs", inputs},
      {"runner", {{"os", "Linux"}, {"arch", "X64"}, {"name", "sandci"}, {"temp", "/tmp/runner"}}},
  };
  return ctx;
}

}  // namespace

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

int run_local(const LocalRunOptions& options, std::atomic<bool>& cancel) {
  if (options.event != "push" && options.event != "pull_request" && options.event != "workflow_dispatch") {
    error("--event must be push, pull_request or workflow_dispatch, not '" + options.event + "'");
    return kExitUsage;
  }
  // Secrets first: everything printed from here on is masked.
  SecretMasker masker;
  std::vector<std::pair<std::string, std::string>> secrets = options.secrets;
  for (const auto& file : options.secrets_files) {
    auto read = read_secrets_file(file);
    if (!read) {
      error(read.error());
      return kExitUsage;
    }
    secrets.insert(secrets.end(), read->begin(), read->end());
  }
  for (const auto& [name, value] : secrets) masker.add(value);

  const fs::path state_dir = options.state_dir.empty() ? sandbox::default_state_dir() : options.state_dir;
  const std::string run_id = run_id_now();
  const fs::path run_dir = state_dir / "runs" / run_id;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) {
    error("cannot create " + run_dir.string() + ": " + ec.message());
    return kExitRunFailed;
  }
  RemoveOnExit remove_workspace{run_dir / "workspace"};
  RemoveOnExit remove_scratch{run_dir / "scratch"};

  auto source = prepare_source(options, run_dir, state_dir);
  if (!source) {
    error(source.error());
    return kExitUsage;
  }
  const std::string ref = options.ref.empty() ? (source->ref.empty() ? "refs/heads/main" : source->ref)
                                              : normalize_ref(options.ref);

  auto loaded = scheduler::load_workflows(source->workspace);
  for (const auto& d : loaded.diagnostics) {
    // Point at the user's files, not at the run's private copy.
    std::string text = d.to_string();
    const std::string prefix = source->workspace.string() + "/";
    if (text.rfind(prefix, 0) == 0) text = text.substr(prefix.size());
    std::cerr << text << "\n";
  }
  if (!loaded.ok()) return kExitUsage;
  if (loaded.files.empty()) {
    std::string folders;
    for (const auto& d : scheduler::workflow_directories()) folders += " " + d;
    error("no workflow files found (looked in" + folders + ")");
    return kExitUsage;
  }

  scheduler::Event event;
  event.name = options.event;
  event.ref = ref;
  event.base_ref = options.base;
  event.action = "opened";
  auto triggered = scheduler::triggered_workflows(loaded.workflows, event);
  if (triggered.empty()) {
    std::cout << "no workflow runs for " << options.event << " of " << ref << ":\n";
    for (const auto& wf : loaded.workflows)
      std::cout << "  " << wf.file.substr(source->workspace.string().size() + 1) << ": "
                << scheduler::match_trigger(wf, event).reason << "\n";
    return kExitOk;
  }

  sandbox::RunscOptions runsc;
  runsc.state_dir = (state_dir / "sandbox").string();
  auto backend = sandbox::RunscBackend::open(runsc);
  if (!backend) {
    error("cannot use runsc: " + backend.error().message);
    return kExitRunFailed;
  }
  sandbox::ImageStore images(state_dir);
  const fs::path logs_dir = options.logs_dir.empty() ? run_dir / "logs" : options.logs_dir;
  ArtifactStore artifacts(run_dir);
  const bool live = !options.plain && isatty(STDOUT_FILENO);
  const std::string run_number = std::to_string(std::time(nullptr));
  const json payload = event_payload(options, *source, ref);
  {
    std::ofstream(run_dir / "event.json") << payload.dump(2) << "\n";
  }

  // --job picks the workflows that have the job; it is an error only when none has it.
  if (!options.jobs.empty()) {
    std::erase_if(triggered, [&](const scheduler::Workflow* wf) {
      return std::none_of(options.jobs.begin(), options.jobs.end(),
                          [&](const std::string& id) { return wf->find_job(id) != nullptr; });
    });
    if (triggered.empty()) {
      error("no triggered workflow has a job named '" + options.jobs.front() + "'");
      return kExitUsage;
    }
  }
  auto labels = read_labels_file(state_dir / "labels.conf");
  if (!labels) {
    error(labels.error());
    return kExitUsage;
  }
  for (const auto& [label, image] : options.labels) (*labels)[label] = image;

  bool any_failed = false;
  bool cancelled = false;
  for (const scheduler::Workflow* original : triggered) {
    scheduler::Workflow wf = *original;
    if (!options.jobs.empty()) {
      std::vector<std::string> here;
      for (const auto& id : options.jobs)
        if (wf.find_job(id)) here.push_back(id);
      if (auto kept = keep_jobs(wf, here); !kept) {
        error(kept.error());
        return kExitUsage;
      }
    }
    if (auto filtered = filter_matrix(wf, options.matrix); !filtered) {
      error(filtered.error());
      return kExitUsage;
    }
    auto plan = scheduler::Plan::build(wf);
    if (!plan) {
      for (const auto& d : plan.error()) std::cerr << d.to_string() << "\n";
      return kExitUsage;
    }
    const std::string file = fs::path(wf.file).lexically_relative(source->workspace).string();
    std::cout << "workflow " << (wf.name.empty() ? file : wf.name + " (" + file + ")") << ": "
              << plan->size() << (plan->size() == 1 ? " job" : " jobs") << ", commit "
              << source->sha.substr(0, 12) << " (" << ref << ")\n";

    JobRunnerConfig config;
    config.workflow = &wf;
    config.workspace = source->workspace;
    config.readonly_mounts = source->object_dirs;
    config.default_image = options.default_image;
    config.runs_on_images = *labels;
    config.limits.memory_bytes = options.memory_mib << 20;
    config.base_env = base_env(*source, ref, options, wf, run_number);
    config.event_payload = payload.dump();
    config.logs_dir = logs_dir;
    config.scratch_dir = run_dir / "scratch";
    ConsoleView view(*plan, live, stdout);
    scheduler::EventFanout fanout;
    fanout.subscribe(&view);

    scheduler::SteadyClock clock;
    scheduler::ExecutorOptions exec_options;
    exec_options.capacity = options.max_parallel ? options.max_parallel
                                                 : std::max(1u, std::thread::hardware_concurrency());
    exec_options.context = base_context(*source, ref, options, payload, secrets, run_number, wf);
    scheduler::RunReport report;
    {
      SandboxJobRunner runner(config, **backend,
                              [&images](std::string_view name) { return images.lookup(name); },
                              artifacts, masker);
      scheduler::Executor executor(*plan, runner, clock, exec_options, &fanout);
      // Ctrl-C arrives as `cancel`; a watcher turns it into executor.cancel().
      std::atomic<bool> done{false};
      std::thread watcher([&] {
        while (!done) {
          if (cancel) {
            executor.cancel();
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      });
      report = executor.run();
      done = true;
      watcher.join();
    }
    view.finish(report.result == scheduler::Result::cancelled);
    if (report.result == scheduler::Result::cancelled) cancelled = true;
    else if (report.result != scheduler::Result::success) any_failed = true;
    if (cancelled) break;
  }
  std::cout << "logs: " << logs_dir.string() << "\n";
  if (!artifacts.names().empty()) std::cout << "artifacts: " << (run_dir / "artifacts").string() << "\n";
  if (cancelled) return kExitCancelled;
  return any_failed ? kExitRunFailed : kExitOk;
}

}  // namespace sandci::agent
