#pragma once
// What the forge and the run store learn while a run goes on. One RunReporter per
// run: it posts the commit statuses (one context per job, `sandci/<workflow>/<job>`,
// and one per workflow, `sandci/<workflow>`) to the durable outbox and records each
// job's state in the store. It observes the executor's events, so it never blocks
// a job: both writes are quick local commits, and the forge is called later by the
// status sender. Jobs the run adds (a matrix computed from needed jobs' outputs)
// are recorded queued and get a pending status when they appear, then as any job.
#include <cstdint>
#include <functional>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/forge/status.h"
#include "agent/runner/run_engine.h"
#include "agent/server/metrics.h"
#include "agent/store/run_store.h"
#include "scheduler/events.h"

namespace sandci::agent::server {

// The commit a run's statuses are about, and where they link to.
struct StatusScope {
  forge::ForgeKind forge = forge::ForgeKind::github;
  std::string repository;
  std::string sha;
  std::string ref;
  std::string target_url;  // the run's page
};

// "sandci/<workflow>" and "sandci/<workflow>/<job>".
std::string workflow_context(const PlannedWorkflow& workflow);
std::string job_context(const PlannedWorkflow& workflow, const std::string& job_name);
std::string job_context(const std::string& workflow_name, const std::string& job_name);
// The job's key in the store, unique in the run: "<workflow file>/<job name>".
std::string job_key(const PlannedWorkflow& workflow, const std::string& job_name);
// What stands for a broken workflow's jobs in the store and on the run page.
inline constexpr const char* kBrokenWorkflowJob = "workflow file";

// Where a workflow's job logs go: <logs_root>/<workflow file stem>/<job>.log,
// so jobs of the same name in two workflows keep their own logs.
std::filesystem::path workflow_logs_dir(const std::filesystem::path& logs_root, const PlannedWorkflow& workflow);

// A duration for people: "0.8s", "12s", "3m4s".
std::string human_duration(std::int64_t millis);

// Ends what a run left open on its commit without running (a run superseded while
// queued, after an interruption had it post pending): every context whose newest
// state for scope.sha is pending or running gets `state` with `description`,
// linking to scope.target_url. Returns how many contexts it ended; a store error
// is logged and ends none.
int end_open_statuses(store::RunStore& store, const StatusScope& scope, forge::CommitState state,
                      const std::string& description, std::int64_t now_ms);

class RunReporter {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch
  // `claim` guards the job writes: once the claim is stale they change nothing.
  RunReporter(store::RunStore& store, store::Claim claim, StatusScope scope, Now now,
              std::function<void()> statuses_changed, Metrics* metrics = nullptr);
  ~RunReporter();

  // Before anything runs: every job queued, every context pending, all in one store
  // write however many jobs there are; each broken workflow failed at once (see broken()).
  void announce(const PreparedRun& run, const std::filesystem::path& logs_root);
  // The observer for one workflow while it runs (valid as long as the reporter).
  // Thread-safe: workflows of a run run side by side.
  scheduler::RunObserver* observe(const PlannedWorkflow& workflow);
  // A job holds its capacity slot and starts: recorded running from now (its
  // started_ms), its context `running`. Thread-safe.
  void job_began(const PlannedWorkflow& workflow, const std::string& name);
  // A workflow ended: its own context gets the final state.
  void workflow_finished(const PlannedWorkflow& workflow, const scheduler::RunReport& report);
  // The run ended before these workflows could run (cancelled, or an error
  // before): their jobs and contexts get `state` with `why`.
  void end_unfinished(const PreparedRun& run, forge::CommitState state, const std::string& why);
  // A workflow that cannot run: its context `sandci/<name>` fails with the first
  // message, and one failed entry "workflow file" stands for it in the store, its
  // log holding every message.
  void broken(const BrokenWorkflow& workflow);
  // One context for the whole run, for errors before any workflow is known
  // (the checkout failed, a workflow file is invalid).
  void run_level(forge::CommitState state, const std::string& description);
  // The run ended (`state` final): if an earlier run for the same commit left a
  // state on the run-level context (`sandci`: a fetch that failed), this run's
  // final state replaces it, so the commit does not keep an error a later run
  // cleared. Posts nothing when that context was never used for the commit.
  void settle_run_level(forge::CommitState state, const std::string& description);

 private:
  class WorkflowObserver;

  void post(const std::string& context, forge::CommitState state, const std::string& description);
  std::int64_t elapsed(const std::string& key);  // since the job started, in ms
  void put_job(const PlannedWorkflow& workflow, const std::string& name, store::JobState state,
               const std::string& message, bool started, bool finished);
  // The job's record as put_job() stores it (noting its start and end for elapsed()).
  store::JobRecord job_record(const PlannedWorkflow& workflow, const std::string& name, store::JobState state,
                              const std::string& message, bool started, bool finished);
  // A status as post() queues it.
  store::StatusRecord status_record(const std::string& context, forge::CommitState state,
                                    const std::string& description) const;

  store::RunStore& store_;
  store::Claim claim_;
  StatusScope scope_;
  Now now_;
  std::function<void()> statuses_changed_;
  Metrics* metrics_;
  std::filesystem::path logs_root_;
  std::mutex mutex_;
  std::map<std::string, std::int64_t> started_ms_;  // by job key
  std::map<std::string, bool> finished_;            // by job key
  std::map<std::string, std::vector<std::string>> added_;  // workflow file -> names of jobs added while it ran
  std::map<std::string, std::unique_ptr<WorkflowObserver>> observers_;  // by workflow file
};

}  // namespace sandci::agent::server
