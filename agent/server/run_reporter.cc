#include "agent/server/run_reporter.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>

#include "agent/runner/sandbox_job_runner.h"

namespace sandci::agent::server {
namespace fs = std::filesystem;
using forge::CommitState;
using scheduler::EventKind;
using scheduler::Result;

std::string workflow_context(const PlannedWorkflow& workflow) { return "sandci/" + workflow.name; }

std::string job_context(const std::string& workflow_name, const std::string& job_name) {
  return "sandci/" + workflow_name + "/" + job_name;
}

std::string job_context(const PlannedWorkflow& workflow, const std::string& job_name) {
  return job_context(workflow.name, job_name);
}

std::string job_key(const PlannedWorkflow& workflow, const std::string& job_name) {
  return workflow.file + "/" + job_name;
}

fs::path workflow_logs_dir(const fs::path& logs_root, const PlannedWorkflow& workflow) {
  return logs_root / log_file_stem(fs::path(workflow.file).stem().string());
}

std::string human_duration(std::int64_t millis) {
  char buf[32];
  if (millis < 10'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(millis) / 1000.0);
  } else if (millis < 60'000) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(millis / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(millis / 60'000),
                  static_cast<long long>((millis / 1000) % 60));
  }
  return buf;
}

namespace {

CommitState commit_state(Result result) {
  switch (result) {
    case Result::success: return CommitState::success;
    case Result::skipped: return CommitState::success;  // as required checks treat a skipped job
    case Result::cancelled: return CommitState::cancelled;
    case Result::failure: return CommitState::failure;
  }
  return CommitState::error;
}

store::JobState job_state(Result result) {
  switch (result) {
    case Result::success: return store::JobState::success;
    case Result::skipped: return store::JobState::skipped;
    case Result::cancelled: return store::JobState::cancelled;
    case Result::failure: return store::JobState::failure;
  }
  return store::JobState::error;
}

std::string final_description(Result result, const std::string& message, std::int64_t millis) {
  switch (result) {
    case Result::success: return "Successful in " + human_duration(millis);
    case Result::skipped: return "Skipped";
    case Result::cancelled: return message.empty() ? "Cancelled" : "Cancelled: " + message;
    case Result::failure:
      return "Failed after " + human_duration(millis) + (message.empty() ? "" : ": " + message);
  }
  return message;
}

// The store keys of the planned jobs `name` waits for, so the run page can draw the
// plan's edges; none for a job the plan does not hold (a matrix instance added later).
std::vector<std::string> needed_keys(const PlannedWorkflow& workflow, const std::string& name) {
  std::vector<std::string> keys;
  const auto& jobs = workflow.plan.jobs();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].name != name) continue;
    for (std::size_t need : workflow.plan.needs(i)) keys.push_back(job_key(workflow, jobs[need].name));
    break;
  }
  return keys;
}

// The context of errors that concern the whole run (see run_level).
constexpr const char* kRunLevelContext = "sandci";

}  // namespace

// Turns one workflow's executor events into job records and statuses.
class RunReporter::WorkflowObserver final : public scheduler::RunObserver {
 public:
  WorkflowObserver(RunReporter& reporter, const PlannedWorkflow& workflow)
      : reporter_(reporter), workflow_(workflow) {}

  void on_event(const scheduler::RunEvent& event) override {
    if (event.kind == EventKind::job_added) {
      // A job of a matrix computed while the run goes on: announced as planned ones were.
      {
        std::lock_guard lock(reporter_.mutex_);
        reporter_.added_[workflow_.file].push_back(event.name);
      }
      reporter_.put_job(workflow_, event.name, store::JobState::queued, "", false, false);
      reporter_.post(job_context(workflow_, event.name), CommitState::pending, "Queued");
    } else if (event.kind == EventKind::job_started) {
      // Dispatched only: it may still wait for a capacity slot, and stays queued
      // until job_began says it holds one.
    } else if (event.kind == EventKind::job_finished && event.result) {
      const std::int64_t took = reporter_.elapsed(job_key(workflow_, event.name));
      if (reporter_.metrics_ && *event.result != Result::skipped)
        reporter_.metrics_->job_finished(static_cast<double>(took) / 1000.0);
      reporter_.put_job(workflow_, event.name, job_state(*event.result), event.message, false, true);
      reporter_.post(job_context(workflow_, event.name), commit_state(*event.result),
                     final_description(*event.result, event.message, took));
    }
  }

 private:
  RunReporter& reporter_;
  const PlannedWorkflow& workflow_;
};

int end_open_statuses(store::RunStore& store, const StatusScope& scope, CommitState state,
                      const std::string& description, std::int64_t now_ms) {
  const std::string forge_name(forge::to_string(scope.forge));
  auto statuses = store.statuses_of(forge_name, scope.repository, scope.sha);
  if (!statuses) {
    spdlog::error("event=status_lookup_failed repository={} sha={} error=\"{}\"", scope.repository, scope.sha,
                  statuses.error().message);
    return 0;
  }
  const std::string pending(forge::forge_state(scope.forge, CommitState::pending));
  const std::string running(forge::forge_state(scope.forge, CommitState::running));
  const std::string wire(forge::forge_state(scope.forge, state));
  int ended = 0;
  for (const auto& status : *statuses) {
    if (status.state != pending && status.state != running) continue;
    auto put = store.put_status(scope.repository, forge_name, scope.sha, status.context, wire, description,
                                scope.target_url, scope.ref, now_ms);
    if (!put) {
      spdlog::error("event=status_not_queued repository={} context=\"{}\" error=\"{}\"", scope.repository,
                    status.context, put.error().message);
      continue;
    }
    ++ended;
  }
  return ended;
}

RunReporter::RunReporter(store::RunStore& store, store::Claim claim, StatusScope scope, Now now,
                         std::function<void()> statuses_changed, Metrics* metrics)
    : store_(store), claim_(std::move(claim)), scope_(std::move(scope)), now_(std::move(now)),
      statuses_changed_(std::move(statuses_changed)), metrics_(metrics) {}

RunReporter::~RunReporter() = default;

store::StatusRecord RunReporter::status_record(const std::string& context, CommitState state,
                                               const std::string& description) const {
  store::StatusRecord status;
  status.repository = scope_.repository;
  status.forge = std::string(forge::to_string(scope_.forge));
  status.sha = scope_.sha;
  status.context = context;
  status.state = std::string(forge::forge_state(scope_.forge, state));
  status.description = description;
  status.target_url = scope_.target_url;
  status.ref = scope_.ref;
  return status;
}

void RunReporter::post(const std::string& context, CommitState state, const std::string& description) {
  const store::StatusRecord status = status_record(context, state, description);
  auto put = store_.put_status(status.repository, status.forge, status.sha, status.context, status.state,
                               status.description, status.target_url, status.ref, now_());
  if (!put) spdlog::error("event=status_not_queued run={} context=\"{}\" error=\"{}\"", claim_.run_id, context,
                          put.error().message);
  if (statuses_changed_) statuses_changed_();
}

std::int64_t RunReporter::elapsed(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = started_ms_.find(key);
  return it == started_ms_.end() ? 0 : now_() - it->second;
}

store::JobRecord RunReporter::job_record(const PlannedWorkflow& workflow, const std::string& name,
                                         store::JobState state, const std::string& message, bool started,
                                         bool finished) {
  store::JobRecord job;
  job.run_id = claim_.run_id;
  job.key = job_key(workflow, name);
  job.workflow = workflow.name;
  job.name = name;
  job.state = state;
  job.message = message;
  job.log_path = (workflow_logs_dir(logs_root_, workflow) / (log_file_stem(name) + ".log")).string();
  job.needs = needed_keys(workflow, name);
  {
    std::lock_guard lock(mutex_);
    if (started) started_ms_[job.key] = now_();
    if (finished) finished_[job.key] = true;
    auto it = started_ms_.find(job.key);
    if (it != started_ms_.end()) job.started_ms = it->second;
  }
  if (finished) job.finished_ms = now_();
  return job;
}

void RunReporter::put_job(const PlannedWorkflow& workflow, const std::string& name, store::JobState state,
                          const std::string& message, bool started, bool finished) {
  const store::JobRecord job = job_record(workflow, name, state, message, started, finished);
  auto put = store_.put_job(claim_, job);
  if (!put) spdlog::error("event=job_not_recorded run={} job=\"{}\" error=\"{}\"", claim_.run_id, name,
                          put.error().message);
}

void RunReporter::announce(const PreparedRun& run, const fs::path& logs_root) {
  logs_root_ = logs_root;
  for (const auto& workflow : run.broken) broken(workflow);
  // One write for the lot: a 1,000-job workflow's first job must not wait for 2,000
  // commits in turn.
  std::vector<store::JobRecord> jobs;
  std::vector<store::StatusRecord> statuses;
  for (const auto& workflow : run.workflows) {
    statuses.push_back(status_record(workflow_context(workflow), CommitState::pending, "Queued"));
    for (const auto& job : workflow.plan.jobs()) {
      jobs.push_back(job_record(workflow, job.name, store::JobState::queued, "", false, false));
      statuses.push_back(status_record(job_context(workflow, job.name), CommitState::pending, "Queued"));
    }
  }
  if (statuses.empty()) return;
  auto put = store_.put_jobs_and_statuses(claim_, jobs, statuses, now_());
  if (!put)
    spdlog::error("event=run_not_announced run={} jobs={} error=\"{}\"", claim_.run_id, jobs.size(),
                  put.error().message);
  if (statuses_changed_) statuses_changed_();
}

scheduler::RunObserver* RunReporter::observe(const PlannedWorkflow& workflow) {
  post(workflow_context(workflow), CommitState::running, "Running");
  auto observer = std::make_unique<WorkflowObserver>(*this, workflow);
  std::lock_guard lock(mutex_);
  auto& slot = observers_[workflow.file];
  slot = std::move(observer);
  return slot.get();
}

void RunReporter::broken(const BrokenWorkflow& workflow) {
  const std::string first = workflow.messages.empty() ? "invalid workflow" : workflow.messages.front();
  const fs::path dir = logs_root_ / log_file_stem(fs::path(workflow.file).stem().string());
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path log = dir / (log_file_stem(kBrokenWorkflowJob) + ".log");
  {
    std::ofstream out(log, std::ios::trunc);
    out << "the workflow cannot run:\n";
    for (const auto& message : workflow.messages) out << message << "\n";
  }
  store::JobRecord job;
  job.run_id = claim_.run_id;
  job.key = workflow.file + "/" + kBrokenWorkflowJob;
  job.workflow = workflow.name;
  job.name = kBrokenWorkflowJob;
  job.state = store::JobState::failure;
  job.message = first;
  job.log_path = log.string();
  job.started_ms = job.finished_ms = now_();
  {
    std::lock_guard lock(mutex_);
    finished_[job.key] = true;
  }
  if (auto put = store_.put_job(claim_, job); !put)
    spdlog::error("event=job_not_recorded run={} job=\"{}\" error=\"{}\"", claim_.run_id, job.key,
                  put.error().message);
  post("sandci/" + workflow.name, CommitState::failure, "Invalid workflow: " + first);
}

void RunReporter::job_began(const PlannedWorkflow& workflow, const std::string& name) {
  put_job(workflow, name, store::JobState::running, "", true, false);
  post(job_context(workflow, name), CommitState::running, "Running");
}

void RunReporter::workflow_finished(const PlannedWorkflow& workflow, const scheduler::RunReport& report) {
  std::int64_t first = 0, last = 0;
  for (const auto& job : report.jobs)
    if (job.started && job.finished) {
      const auto ms = [](auto point) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(point.time_since_epoch()).count();
      };
      first = first == 0 ? ms(*job.started) : std::min(first, ms(*job.started));
      last = std::max(last, ms(*job.finished));
    }
  // A grown matrix's placeholder stands for its instances: they are counted, not it.
  std::size_t failed = 0, total = 0;
  for (const auto& job : report.jobs) {
    if (job.grown) continue;
    ++total;
    failed += job.result == Result::failure && !job.continued_on_error;
  }
  std::string description = final_description(report.result, "", last - first);
  if (report.result == Result::failure)
    description = std::to_string(failed) + " of " + std::to_string(total) + " jobs failed";
  post(workflow_context(workflow), commit_state(report.result), description);
}

void RunReporter::end_unfinished(const PreparedRun& run, CommitState state, const std::string& why) {
  const store::JobState job = state == CommitState::cancelled ? store::JobState::cancelled : store::JobState::error;
  for (const auto& workflow : run.workflows) {
    bool any_left = false;
    std::vector<std::string> names;
    for (const auto& concrete : workflow.plan.jobs()) names.push_back(concrete.name);
    {
      std::lock_guard lock(mutex_);
      if (auto it = added_.find(workflow.file); it != added_.end())
        names.insert(names.end(), it->second.begin(), it->second.end());
    }
    for (const auto& name : names) {
      const std::string key = job_key(workflow, name);
      {
        std::lock_guard lock(mutex_);
        if (finished_.contains(key)) continue;
      }
      any_left = true;
      put_job(workflow, name, job, why, false, true);
      post(job_context(workflow, name), state, why);
    }
    if (any_left) post(workflow_context(workflow), state, why);
  }
}

void RunReporter::run_level(CommitState state, const std::string& description) {
  post(kRunLevelContext, state, description);
}

void RunReporter::settle_run_level(CommitState state, const std::string& description) {
  auto statuses = store_.statuses_of(std::string(forge::to_string(scope_.forge)), scope_.repository, scope_.sha);
  if (!statuses) {
    spdlog::error("event=status_lookup_failed run={} error=\"{}\"", claim_.run_id, statuses.error().message);
    return;
  }
  const std::string wire = std::string(forge::forge_state(scope_.forge, state));
  for (const auto& status : *statuses) {
    if (status.context == kRunLevelContext && status.state != wire) post(kRunLevelContext, state, description);
  }
}

}  // namespace sandci::agent::server
