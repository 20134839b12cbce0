#pragma once
// Runs a Plan against a JobRunner, the way Actions runs a workflow: at most
// `capacity` jobs at a time, ready jobs in critical-path order; a job starts
// when its needs are done and its `if:` holds (by default: every needed job
// succeeded), else it is skipped; continue-on-error, matrix fail-fast and
// max-parallel, timeout-minutes, and cancellation of the whole run.
// A job whose matrix reads needs.* outputs is one placeholder in the plan
// ("test (matrix)"): once its needs are done and its `if:` holds, the executor
// evaluates the matrix and grows the run by one job per combination (indices
// from plan.size() on, announced with job_added events); the placeholder then
// stands for them and finishes, with their combined result and merged outputs,
// when the last of them does, so its dependents wait for every instance.
// Single-threaded: run() drives everything; only cancel() may be called from
// another thread. Time is read from the Clock only, so a fake runner and a fake
// clock make a run deterministic.
#include <atomic>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/clock.h"
#include "scheduler/events.h"
#include "scheduler/expression.h"
#include "scheduler/job_runner.h"
#include "scheduler/plan.h"
#include "scheduler/result.h"

namespace sandci::scheduler {

struct ExecutorOptions {
  std::size_t capacity = 1;  // jobs running at once (0 counts as 1)
  // Contexts every job sees: github, env, vars, secrets, inputs...
  EvalContext context;
  MatrixOptions matrix;  // limits for matrices grown while the run goes on
  // key=value filters (`sandci run --matrix`) for matrices grown while the run goes
  // on: a grown combination that has the key with another value is not added (a
  // log line on the placeholder says how many were left out, once); none left is
  // a failure of the placeholder. Combinations without the key are kept.
  std::vector<std::pair<std::string, std::string>> matrix_filters;
};

struct JobReport {
  Result result = Result::skipped;
  // The job failed but had continue-on-error: its dependents and the run see success.
  bool continued_on_error = false;
  nlohmann::json outputs;  // an object; null when the job set none (most jobs: no allocation)
  std::string message;  // why it did not succeed ("timed out after 5 minutes")
  std::optional<Clock::time_point> started, finished;
  // A placeholder whose matrix grew at run time: its result is its instances'
  // (counted there), its start the moment they were added.
  bool grown = false;
};

struct RunReport {
  // cancelled when cancel() was called; else failure when a job failed
  // without continue-on-error; else success.
  Result result = Result::success;
  std::vector<JobReport> jobs;  // by plan index, then the added jobs
  // Jobs added while the run went on (grown matrices): jobs[plan.size() + k] is added[k].
  std::vector<ConcreteJob> added;
};

class Executor {
 public:
  // plan, runner, clock and observer must outlive the executor; observer may be null.
  Executor(const Plan& plan, JobRunner& runner, const Clock& clock, ExecutorOptions options = {},
           RunObserver* observer = nullptr);

  // Runs every job to its end; call once.
  RunReport run();

  // Thread-safe, any time: running jobs are told to stop (unless their `if:`
  // still holds once the run is cancelled, as with always()), jobs not started
  // end cancelled, except those whose `if:` holds after cancellation.
  void cancel();

 private:
  // grown: a placeholder waiting for the instances its matrix grew into.
  enum class State : unsigned char { waiting, ready, running, grown, finished };
  enum class StopReason : unsigned char { none, timeout, cancelled, fail_fast };

  struct JobState {
    State state = State::waiting;
    StopReason stop = StopReason::none;
    bool fail_fast_cancelled = false;  // a sibling failed before this one could start
    bool continue_on_error = false;
    bool started = false;
    Result result = Result::skipped;
    // Set as its needs finish, so deciding the job reads only its own state.
    bool need_unsuccessful = false;  // a needed job did not succeed: success() is false
    bool failed_ancestry = false;    // a job before it failed: failure() is true
    std::size_t remaining_needs = 0;
  };

  // Per workflow job, what the loop needs of its definition, read once and kept
  // small: the Job structs themselves are large and scattered.
  struct GroupInfo {
    Clock::duration timeout{};
    std::size_t max_parallel = 0;  // 0: no limit
    bool fail_fast = false;        // a matrix with fail-fast
    bool condition_empty = true;
    bool uses_status_function = false;  // its `if:` calls success()/failure()/...
    unsigned char continue_on_error = 0;  // 0 false, 1 true, 2 an expression
    bool join = false;      // calls a reusable workflow: finished from its called jobs, never run
    bool resolve = false;   // has expressions evaluated when it starts (env, timeout, matrix)
    std::size_t scope = 0;  // jobs of one call (one copy of a called workflow) share a scope; 0: top
  };

  // What a call passes its jobs, evaluated once its caller's needs are done.
  struct CallValues {
    std::string error;  // why `with` or `secrets` could not be evaluated; empty: fine
    nlohmann::json inputs, secrets;
  };

  // Per workflow job: its instances' progress and, once all are done, what
  // dependents see as needs.<id> (result and failed ancestry are kept apart,
  // in compact arrays, because every dependent reads them).
  struct GroupState {
    std::size_t unfinished = 0;
    std::size_t running = 0;
    bool any_failure = false, any_cancelled = false, any_success = false;
  };

  // Plan::runs_before with the priority copied in, so that heap operations do
  // not chase indices into the plan.
  struct ReadyEntry {
    double priority;
    std::size_t index;
    bool operator<(const ReadyEntry& other) const {  // "starts after"
      return priority != other.priority ? priority < other.priority : index > other.index;
    }
  };
  using Deadline = std::pair<Clock::time_point, std::size_t>;

  void handle_cancel();
  void decide(std::size_t i);
  void make_ready(std::size_t i);
  void start_ready();
  void start(std::size_t i);
  void complete(JobCompletion completion);
  void finish(std::size_t i, Result result, std::string message);
  void finish_group(std::size_t job_index);
  // ---- matrices grown at run time ----
  // Concrete job i, from the plan or from those the run added.
  const ConcreteJob& concrete_job(std::size_t i) const {
    return i < plan_size_ ? plan_.concrete(i) : added_[i - plan_size_];
  }
  std::size_t group(std::size_t i) const { return i < plan_size_ ? plan_.job_index(i) : added_[i - plan_size_].job_index; }
  const Job& workflow_job(std::size_t i) const { return plan_.workflow().jobs[group(i)]; }
  // Added jobs start in their placeholder's place and reach dependents only through it.
  double priority_of(std::size_t i) const;
  std::span<const std::size_t> dependents_of(std::size_t i) const {
    return i < plan_size_ ? plan_.dependents(i) : std::span<const std::size_t>{};
  }
  // The job's instances: those its matrix grew into, else the plan's.
  std::span<const std::size_t> instances_of(std::size_t g) const;
  void grow(std::size_t placeholder);
  // Applies options_.matrix_filters to a grown matrix; an error when none is left.
  std::expected<void, std::string> filter_grown(std::size_t placeholder, std::vector<ConcreteJob>& instances);
  std::size_t add_job(ConcreteJob concrete, const JobState& like);
  void fail_fast(std::size_t failed);
  void check_timeouts(Clock::time_point now);
  std::optional<Clock::time_point> nearest_deadline();
  EvalContext job_context(std::size_t i) const;
  // ---- reusable workflows ----
  void prepare_scopes();
  std::size_t group_of(const std::string& id) const;
  // The contexts of the job that calls `frame`'s workflow (for its with, secrets, if).
  EvalContext caller_context(const CallFrame& frame) const;
  const CallValues& call_values(const CallFrame& frame) const;
  // Whether every caller up the chain of job group g lets its called jobs run.
  std::expected<bool, std::string> callers_allow(std::size_t g) const;
  void finish_join(std::size_t i);
  // Evaluates a job's run-time expressions (env, step env, timeout); nullptr: none.
  std::expected<const Job*, std::string> resolved_job(std::size_t i);
  const nlohmann::json& group_outputs(std::size_t job_index) const;
  // Whether job i's `if:` holds now; an error message when it cannot be evaluated.
  std::expected<bool, std::string> condition_holds(std::size_t i) const;
  bool continue_on_error_holds(std::size_t i) const;
  bool needs_failed_ancestry(std::size_t job_index) const;
  void publish(EventKind kind, std::size_t job, std::optional<Result> result = std::nullopt,
               const std::string& message = {});

  const Plan& plan_;
  JobRunner& runner_;
  const Clock& clock_;
  ExecutorOptions options_;
  RunObserver* observer_;

  std::atomic<bool> cancel_requested_{false};
  bool cancelled_ = false;
  std::size_t running_ = 0;
  std::vector<JobState> jobs_;
  std::vector<GroupInfo> info_;
  std::vector<GroupState> groups_;
  std::vector<Result> group_result_;
  std::vector<std::vector<std::size_t>> deferred_;  // ready, held back by max-parallel
  // Instances' outputs merged, for matrices (a single job's are in its report).
  std::vector<nlohmann::json> merged_outputs_;
  // Times in compact arrays: writing them into the reports as jobs start and
  // finish in DAG order missed the cache for big plans.
  std::vector<Clock::time_point> started_at_, finished_at_;
  std::vector<char> failed_ancestry_;  // failure() is true for the jobs after it
  std::vector<std::size_t> to_decide_;
  std::priority_queue<ReadyEntry> ready_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  std::vector<Clock::time_point> deadline_of_;
  std::vector<const Job*> job_of_;        // per concrete job when resolved_job made a copy
  std::vector<double> timeout_minutes_;   // per concrete job
  std::deque<Job> resolved_jobs_;
  std::size_t plan_size_ = 0;
  std::deque<ConcreteJob> added_;  // stable addresses: requests point at them
  std::map<std::size_t, std::vector<std::size_t>> grown_;  // group -> instances added for it         // stable addresses: runners keep pointers
  std::map<std::string, std::size_t> group_by_id_;  // only filled when the workflow has calls
  mutable std::map<const CallFrame*, CallValues> call_values_;
  RunReport report_;
};

}  // namespace sandci::scheduler
