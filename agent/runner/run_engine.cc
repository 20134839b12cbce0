#include "agent/runner/run_engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "agent/runner/artifacts.h"
#include "agent/runner/job_image.h"
#include "scheduler/matrix.h"
#include "scheduler/trigger.h"
#include "scheduler/workflow_loader.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string relative_to(const fs::path& file, const fs::path& workspace) {
  return fs::path(file).lexically_relative(workspace).string();
}

// Diagnostics point at the repository's files, not at the run's private copy.
std::string strip_workspace(std::string text, const fs::path& workspace) {
  const std::string prefix = workspace.string() + "/";
  if (text.rfind(prefix, 0) == 0) text = text.substr(prefix.size());
  return text;
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
    // A job of a called workflow runs with the rest of its call.
    if (job->frame) todo.push_back(job->frame->caller);
  }
  std::erase_if(wf.jobs, [&](const scheduler::Job& job) { return !keep.contains(job.id); });
  return {};
}

// Restricts matrices to key=value: dimension values and include entries that
// disagree are dropped; jobs whose matrix lacks the key are left alone.
std::expected<void, std::string> filter_matrix(scheduler::Workflow& wf, const NameValueList& filters) {
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

std::expected<void, std::string> apply_selection(scheduler::Workflow& wf, const RunSelection& selection) {
  if (!selection.jobs.empty()) {
    std::vector<std::string> here;
    for (const auto& id : selection.jobs)
      if (wf.find_job(id)) here.push_back(id);
    if (auto kept = keep_jobs(wf, here); !kept) return kept;
  }
  return filter_matrix(wf, selection.matrix);
}

std::string owner_of(const std::string& repository) {
  const auto slash = repository.find('/');
  return slash == std::string::npos ? repository : repository.substr(0, slash);
}

// runner.arch as GitHub spells it, for this host.
std::string runner_arch() {
  const std::string& arch = host_architecture();
  if (arch == "aarch64") return "ARM64";
  if (arch == "armv7") return "ARM";
  return arch == "x86_64" ? "X64" : arch;
}

std::string ref_type(const std::string& ref) { return ref.rfind("refs/tags/", 0) == 0 ? "tag" : "branch"; }

NameValueList base_env(const RunSource& source, const RunTrigger& trigger, const RunEnvironment& env,
                    const PlannedWorkflow& planned) {
  NameValueList vars = {
      {"CI", "true"},
      {"GITHUB_ACTIONS", "true"},
      {"SANDCI", "true"},
      {"GITHUB_WORKSPACE", "/workspace"},
      {"GITHUB_SHA", source.sha},
      {"GITHUB_REF", source.ref},
      {"GITHUB_REF_NAME", short_ref_name(source.ref)},
      {"GITHUB_REF_TYPE", ref_type(source.ref)},
      {"GITHUB_REPOSITORY", source.repository},
      {"GITHUB_REPOSITORY_OWNER", owner_of(source.repository)},
      {"GITHUB_EVENT_NAME", trigger.event},
      {"GITHUB_RUN_ID", env.run_id},
      {"GITHUB_RUN_NUMBER", env.run_number},
      {"GITHUB_RUN_ATTEMPT", env.run_attempt},
      {"GITHUB_ACTOR", trigger.actor},
      {"GITHUB_WORKFLOW", planned.name},
      {"RUNNER_OS", "Linux"},
      {"RUNNER_ARCH", runner_arch()},
      {"RUNNER_NAME", "sandci"},
      {"RUNNER_ENVIRONMENT", "self-hosted"},
  };
  if (trigger.event == "pull_request" || trigger.event == "pull_request_target") {
    vars.emplace_back("GITHUB_BASE_REF", trigger.base_ref);
    vars.emplace_back("GITHUB_HEAD_REF", trigger.head_ref);
  }
  if (!env.server_url.empty()) vars.emplace_back("GITHUB_SERVER_URL", env.server_url);
  return vars;
}

scheduler::EvalContext base_context(const RunSource& source, const RunTrigger& trigger, const RunEnvironment& env,
                                    const scheduler::Workflow& wf) {
  json secrets = json::object();
  for (const auto& [k, v] : env.secrets) secrets[k] = v;
  json inputs = json::object();
  if (wf.on.workflow_dispatch)
    for (const auto& input : wf.on.workflow_dispatch->inputs)
      if (input.default_value) inputs[input.name] = *input.default_value;
  for (const auto& [k, v] : trigger.inputs) inputs[k] = v;
  const bool pull_request = trigger.event == "pull_request" || trigger.event == "pull_request_target";
  scheduler::EvalContext ctx;
  ctx.contexts = {
      {"github",
       {{"event_name", trigger.event},
        {"event", trigger.payload},
        {"ref", source.ref},
        {"ref_name", short_ref_name(source.ref)},
        {"ref_type", ref_type(source.ref)},
        {"sha", source.sha},
        {"repository", source.repository},
        {"repository_owner", owner_of(source.repository)},
        {"workspace", "/workspace"},
        {"run_id", env.run_id},
        {"run_number", env.run_number},
        {"run_attempt", env.run_attempt},
        {"actor", trigger.actor},
        {"workflow", wf.name},
        {"base_ref", pull_request ? trigger.base_ref : ""},
        {"head_ref", pull_request ? trigger.head_ref : ""},
        {"server_url", env.server_url}}},
      {"env", json::object()},
      {"vars", json::object()},
      {"secrets", secrets},
      {"inputs", inputs},
      // The paths are the sandbox's (agent/runner/sandbox_job_runner.cc makes them).
      {"runner",
       {{"os", "Linux"},
        {"arch", runner_arch()},
        {"name", "sandci"},
        {"environment", "self-hosted"},
        {"debug", ""},
        {"temp", "/tmp/runner"},
        {"workspace", "/home/runner/work"},
        {"tool_cache", "/opt/hostedtoolcache"}}},
  };
  return ctx;
}

JobRunnerConfig job_runner_config(const PlannedWorkflow& planned, const RunSource& source,
                                  const RunTrigger& trigger, const RunEnvironment& env) {
  JobRunnerConfig config;
  config.workflow = planned.workflow.get();
  config.workspace = source.workspace;
  config.readonly_mounts = source.object_dirs;
  config.default_image = env.default_image;
  config.runs_on_images = env.labels;
  config.limits = env.limits;
  config.base_env = base_env(source, trigger, env, planned);
  config.event_payload = trigger.payload.dump();
  // A run of several workflows keeps each one's files apart (workflow_scope).
  const bool scoped = !env.workflow_scope.empty();
  config.logs_dir = env.workflow_logs_dir ? env.workflow_logs_dir(planned) : env.logs_dir;
  if (!env.workflow_logs_dir && scoped && !env.logs_dir.empty()) config.logs_dir /= env.workflow_scope;
  config.scratch_dir = env.run_dir / "scratch";
  config.event_dir = config.scratch_dir;  // one payload per run, whatever the workflow
  if (scoped) config.scratch_dir /= env.workflow_scope;
  config.slots = env.slots;
  config.log_limit_bytes = env.log_limit_bytes;
  config.timings = env.timings;
  config.warm_sandboxes = env.warm_sandboxes;
  config.warm_slots = env.warm_slots;
  config.plan = &planned.plan;
  config.egress = env.egress;
  config.actions = env.actions;
  config.node_cache_dir = env.node_cache_dir;
  config.cache = env.cache;
  config.cache_scope = cache_scope(source, trigger);
  config.checkout = {source.repository, source.sha, source.object_dirs, env.checkout};
  return config;
}

// Runs one planned workflow to its end; a watcher thread turns `cancel` into
// executor.cancel().
scheduler::RunReport execute_workflow(const PlannedWorkflow& planned, const RunSource& source,
                                      const RunTrigger& trigger, const RunEnvironment& env,
                                      ArtifactStore& artifacts, std::atomic<bool>& cancel,
                                      scheduler::RunObserver* observer, const NameValueList& matrix_filters,
                                      const WorkflowHooks& hooks) {
  scheduler::SteadyClock clock;
  scheduler::ExecutorOptions options;
  options.capacity = std::max<std::size_t>(1, env.capacity);
  options.matrix_filters = matrix_filters;
  options.context = base_context(source, trigger, env, *planned.workflow);
  JobRunnerConfig config = job_runner_config(planned, source, trigger, env);
  if (hooks.job_began) config.job_began = [&hooks, &planned](const std::string& name) { hooks.job_began(planned, name); };
  SandboxJobRunner runner(std::move(config), *env.backend, env.images, artifacts, *env.masker);
  scheduler::Executor executor(planned.plan, runner, clock, options, observer);
  // The watcher polls `cancel` (set from a signal thread) but is woken at once
  // when the run ends: the end of a run waits for no tick.
  std::mutex done_mutex;
  std::condition_variable done_changed;
  bool done = false;
  std::thread watcher([&] {
    std::unique_lock lock(done_mutex);
    while (!done) {
      if (cancel) {
        lock.unlock();
        executor.cancel();
        return;
      }
      done_changed.wait_for(lock, std::chrono::milliseconds(50));
    }
  });
  scheduler::RunReport report = executor.run();
  {
    std::lock_guard lock(done_mutex);
    done = true;
  }
  done_changed.notify_all();
  watcher.join();
  return report;
}

}  // namespace

std::string concurrency_group(const PlannedWorkflow& workflow, const RunSource& source, const RunTrigger& trigger,
                              const RunEnvironment& env) {
  if (!workflow.workflow->concurrency) return "";
  const std::string& group = workflow.workflow->concurrency->group;
  auto evaluated = scheduler::interpolate(group, base_context(source, trigger, env, *workflow.workflow));
  return evaluated ? *evaluated : group;
}

bool concurrency_cancels(const PlannedWorkflow& workflow, const RunSource& source, const RunTrigger& trigger,
                         const RunEnvironment& env) {
  if (!workflow.workflow->concurrency) return false;
  const std::string& cancel = workflow.workflow->concurrency->cancel_in_progress;
  if (cancel == "true" || cancel == "false") return cancel == "true";
  auto evaluated = scheduler::interpolate(cancel, base_context(source, trigger, env, *workflow.workflow));
  return evaluated && *evaluated == "true";
}

CacheScope cache_scope(const RunSource& source, const RunTrigger& trigger) {
  CacheScope scope;
  scope.repository = source.repository;
  auto add_read = [&](const std::string& ref) {
    if (!ref.empty() && std::find(scope.read_refs.begin(), scope.read_refs.end(), ref) == scope.read_refs.end())
      scope.read_refs.push_back(ref);
  };
  auto branch_ref = [](const std::string& name) { return name.rfind("refs/", 0) == 0 ? name : "refs/heads/" + name; };
  if (trigger.event == "pull_request") {
    std::string number;
    if (source.ref.rfind("refs/pull/", 0) == 0) number = short_ref_name(source.ref).substr(0, short_ref_name(source.ref).find('/'));
    const json& payload = trigger.payload;
    if (number.empty() && payload.is_object() && payload.contains("number") && payload["number"].is_number_integer())
      number = std::to_string(payload["number"].get<long long>());
    scope.write_ref = number.empty() ? source.ref : "refs/pull/" + number + "/merge";
    add_read(scope.write_ref);
    add_read(branch_ref(trigger.base_ref));
    return scope;
  }
  scope.write_ref = source.ref;
  add_read(source.ref);
  std::string default_branch = "main";
  const json& payload = trigger.payload;
  if (payload.is_object() && payload.contains("repository") && payload["repository"].is_object() &&
      payload["repository"].contains("default_branch") && payload["repository"]["default_branch"].is_string())
    default_branch = payload["repository"]["default_branch"].get<std::string>();
  add_read(branch_ref(default_branch));
  return scope;
}

std::string short_ref_name(const std::string& ref) {
  for (const char* prefix : {"refs/heads/", "refs/tags/", "refs/pull/"})
    if (ref.rfind(prefix, 0) == 0) return ref.substr(std::string_view(prefix).size());
  return ref;
}

namespace {

std::expected<std::string, std::string> read_bounded(const fs::path& file, std::size_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return std::unexpected("cannot read " + file.string() + ": " + ec.message());
  if (size > limit) return std::unexpected(file.string() + " is larger than " + std::to_string(limit) + " bytes");
  std::ifstream in(file, std::ios::binary);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (in.bad()) return std::unexpected("cannot read " + file.string());
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// The file `relative` names under `root`, refusing symbolic links on the way: the
// repository is untrusted and must not make the agent read a file outside it.
std::expected<std::string, std::string> read_inside(const fs::path& root, const std::string& relative) {
  fs::path path = root;
  for (const auto& part : fs::path(relative)) {
    path /= part;
    std::error_code ec;
    const auto status = fs::symlink_status(path, ec);
    if (ec || status.type() == fs::file_type::not_found) return std::unexpected(relative + " does not exist");
    if (status.type() == fs::file_type::symlink)
      return std::unexpected(relative + " goes through a symbolic link; called workflows must be regular files");
  }
  return read_bounded(path, scheduler::LoaderLimits{}.max_file_bytes);
}

}  // namespace

bool plans_job_of_image(const PreparedRun& run, const std::string& image, const std::string& default_image,
                        const std::map<std::string, std::string>& labels) {
  for (const auto& w : run.workflows) {
    const auto counts = planned_jobs_by_image(w.plan, default_image, labels);
    if (auto it = counts.find(image); it != counts.end() && it->second > 0) return true;
  }
  return false;
}

scheduler::WorkflowReader workflow_reader(const fs::path& root, ActionSource* actions) {
  return [root, actions](const scheduler::UsesRef& ref) -> std::expected<std::string, std::string> {
    if (ref.kind == scheduler::UsesRef::Kind::local) return read_inside(root, ref.path);
    if (!actions)
      return std::unexpected("remote reusable workflows need an actions source (none is configured for this run)");
    auto fetched = actions->fetch(ref);
    if (!fetched) return std::unexpected(fetched.error());
    return read_inside(fetched->root, ref.path);
  };
}

namespace {

// The workflow files the load refused, each with its errors; nullopt when an
// error belongs to no workflow file (then nothing can run).
std::optional<std::map<std::string, std::vector<std::string>>> refused_files(const scheduler::LoadResult& loaded,
                                                                            const fs::path& workspace) {
  std::set<std::string> files(loaded.files.begin(), loaded.files.end());
  for (const auto& d : loaded.diagnostics)
    if (d.severity == scheduler::Severity::error && !files.contains(d.location.file)) return std::nullopt;
  std::map<std::string, std::vector<std::string>> messages;
  for (const auto& d : loaded.diagnostics)
    if (d.severity == scheduler::Severity::error)
      messages[relative_to(d.location.file, workspace)].push_back(strip_workspace(d.to_string(), workspace));
  return messages;
}

std::vector<std::string> all_messages(const std::vector<BrokenWorkflow>& broken) {
  std::vector<std::string> all;
  for (const auto& b : broken) all.insert(all.end(), b.messages.begin(), b.messages.end());
  return all;
}

}  // namespace

std::expected<PreparedRun, PrepareError> prepare_run(const RunSource& source, const RunTrigger& trigger,
                                                     const RunSelection& selection, ActionSource* actions) {
  using Kind = PrepareError::Kind;
  auto loaded = scheduler::load_workflows(source.workspace);
  PrepareError error;
  for (const auto& d : loaded.diagnostics) error.messages.push_back(strip_workspace(d.to_string(), source.workspace));
  const auto refused = refused_files(loaded, source.workspace);
  if (!refused) return std::unexpected(error);
  if (loaded.files.empty()) {
    std::string folders;
    for (const auto& d : scheduler::workflow_directories()) folders += " " + d;
    return std::unexpected(PrepareError{Kind::no_workflows, {"no workflow files found (looked in" + folders + ")"}});
  }

  scheduler::Event event;
  event.name = trigger.event;
  event.ref = source.ref;
  event.base_ref = trigger.base_ref;
  event.action = trigger.action;
  // A schedule run is for one cron line (and, from the agent, one workflow file).
  auto payload_text = [&trigger](const char* key) {
    if (!trigger.payload.is_object()) return std::string();
    auto it = trigger.payload.find(key);
    return it != trigger.payload.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (trigger.event == "schedule") event.schedule = payload_text("schedule");
  const std::string only_file = trigger.event == "schedule" ? payload_text("workflow") : std::string();
  PreparedRun prepared;
  for (const auto& d : loaded.diagnostics)
    if (d.severity == scheduler::Severity::note)
      prepared.notes.push_back(strip_workspace(d.to_string(), source.workspace));
  std::vector<BrokenWorkflow> broken;
  for (const auto& [file, messages] : *refused)
    if (only_file.empty() || file == only_file)
      broken.push_back({file, fs::path(file).filename().string(), messages});
  auto triggered = scheduler::triggered_workflows(loaded.workflows, event);
  if (!only_file.empty())
    std::erase_if(triggered, [&](const scheduler::Workflow* wf) { return relative_to(wf->file, source.workspace) != only_file; });
  for (const auto& wf : loaded.workflows)
    if (std::find(triggered.begin(), triggered.end(), &wf) == triggered.end())
      prepared.not_triggered.push_back(relative_to(wf.file, source.workspace) + ": " +
                                       scheduler::match_trigger(wf, event).reason);

  // --job picks the workflows that have the job; it is an error only when none has it.
  if (!selection.jobs.empty()) {
    std::erase_if(triggered, [&](const scheduler::Workflow* wf) {
      return std::none_of(selection.jobs.begin(), selection.jobs.end(),
                          [&](const std::string& id) { return wf->find_job(id) != nullptr; });
    });
    if (triggered.empty()) {
      PrepareError none{Kind::selection, {"no triggered workflow has a job named '" + selection.jobs.front() + "'"}};
      for (auto& message : all_messages(broken)) none.messages.push_back(std::move(message));
      return std::unexpected(none);
    }
  }

  auto strip_all = [&](const scheduler::Diagnostics& list) {
    std::vector<std::string> messages;
    for (const auto& d : list) messages.push_back(strip_workspace(d.to_string(), source.workspace));
    return messages;
  };
  for (const scheduler::Workflow* original : triggered) {
    const std::string file = relative_to(original->file, source.workspace);
    const std::string name = original->name.empty() ? fs::path(file).filename().string() : original->name;
    scheduler::CallOptions calls;
    calls.read = workflow_reader(source.workspace, actions);
    calls.root = source.workspace.string();
    scheduler::Diagnostics diagnostics;
    auto expanded = scheduler::expand_calls(*original, calls, diagnostics);
    if (!expanded) {
      broken.push_back({file, name, strip_all(diagnostics)});
      continue;
    }
    auto workflow = std::make_unique<scheduler::Workflow>(std::move(*expanded));
    if (auto errors = scheduler::resolve_planned_matrices(*workflow, base_context(source, trigger, {}, *workflow));
        !errors.empty()) {
      broken.push_back({file, name, strip_all(errors)});
      continue;
    }
    if (auto selected = apply_selection(*workflow, selection); !selected)
      return std::unexpected(PrepareError{Kind::selection, {selected.error()}});
    auto plan = scheduler::Plan::build(*workflow);
    if (!plan) {
      broken.push_back({file, name, strip_all(plan.error())});
      continue;
    }
    prepared.workflows.push_back({std::move(workflow), std::move(*plan), file, name});
  }
  // Nothing left to run: the run fails with every message, as one invalid file did.
  if (prepared.workflows.empty() && !broken.empty()) {
    PrepareError invalid;
    invalid.messages = prepared.notes;
    for (auto& message : all_messages(broken)) invalid.messages.push_back(std::move(message));
    return std::unexpected(invalid);
  }
  prepared.matrix_filters = selection.matrix;
  if (selection.jobs.empty()) {
    prepared.broken = std::move(broken);
  } else {
    for (auto& message : all_messages(broken)) prepared.notes.push_back(std::move(message));
  }
  return prepared;
}

namespace {

// The artifact folder of each workflow of a run: "" when it is the only one,
// else its file's name without the extension ("ci" for .github/workflows/ci.yml),
// with "-2", "-3" ... when two files share a name in different folders.
std::vector<std::string> artifact_scopes(const std::vector<PlannedWorkflow>& workflows) {
  if (workflows.size() <= 1) return std::vector<std::string>(workflows.size());
  std::vector<std::string> scopes;
  std::set<std::string> taken;
  for (const auto& planned : workflows) {
    const std::string stem = fs::path(planned.file).stem().string();
    const std::string base = stem.empty() || stem.front() == '.' ? "workflow" : stem;
    std::string scope = base;
    for (int n = 2; taken.contains(scope); ++n) scope = base + "-" + std::to_string(n);
    taken.insert(scope);
    scopes.push_back(scope);
  }
  return scopes;
}

}  // namespace

RunResult execute_run(const PreparedRun& run, const RunSource& source, const RunTrigger& trigger,
                      const RunEnvironment& env, std::atomic<bool>& cancel, const WorkflowHooks& hooks) {
  {
    std::error_code ec;
    fs::create_directories(env.run_dir, ec);
    std::ofstream(env.run_dir / "event.json") << trigger.payload.dump(2) << "\n";
  }
  // One artifact namespace per workflow (see ArtifactStore); a run of one
  // workflow keeps its artifacts straight in run_dir/artifacts.
  std::deque<ArtifactStore> artifacts;
  const auto scopes = artifact_scopes(run.workflows);
  for (const auto& scope : scopes) artifacts.emplace_back(env.run_dir, scope);
  if (cancel) return RunResult::cancelled;
  // The run's capacity is shared by its workflows: each executor may start that
  // many jobs, and a job waits for one of the run's slots (inside the agent's).
  const std::size_t capacity = std::max<std::size_t>(1, env.capacity);
  JobSlots run_slots(capacity, env.slots);
  RunEnvironment shared = env;
  shared.capacity = capacity;
  shared.slots = &run_slots;
  std::vector<scheduler::Result> results(run.workflows.size(), scheduler::Result::success);
  auto one = [&](std::size_t i) {
    const PlannedWorkflow& planned = run.workflows[i];
    scheduler::RunObserver* observer = hooks.started ? hooks.started(planned) : nullptr;
    RunEnvironment mine = shared;
    mine.workflow_scope = scopes[i];
    auto report =
        execute_workflow(planned, source, trigger, mine, artifacts[i], cancel, observer, run.matrix_filters, hooks);
    if (hooks.finished) hooks.finished(planned, report);
    results[i] = report.result;
  };
  if (run.workflows.size() == 1) {
    one(0);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(run.workflows.size());
    for (std::size_t i = 0; i < run.workflows.size(); ++i) threads.emplace_back(one, i);
    for (auto& thread : threads) thread.join();
  }
  bool failed = !run.broken.empty();
  for (const auto result : results) {
    if (result == scheduler::Result::cancelled) return RunResult::cancelled;
    if (result != scheduler::Result::success) failed = true;
  }
  return failed ? RunResult::failure : RunResult::success;
}

}  // namespace sandci::agent
