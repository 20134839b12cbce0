#pragma once
// The executor's only way out: a JobRunner runs one concrete job (all of its
// steps, usually in a fresh sandbox) and reports how it ended. The agent
// implements it with gVisor sandboxes; tests implement it with a scripted fake.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "scheduler/clock.h"
#include "scheduler/events.h"
#include "scheduler/expression.h"
#include "scheduler/matrix.h"
#include "scheduler/result.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

struct JobRequest {
  std::size_t index = 0;  // the job's index in the plan; names it in stop() and completions
  const Job* job = nullptr;               // steps, env, container... (owned by the workflow)
  const ConcreteJob* concrete = nullptr;  // display name and matrix (owned by the plan)
  // Builds the job's contexts: the executor's (github, env, vars, secrets,
  // inputs...) plus matrix, strategy and needs (needs.<id>.result and
  // needs.<id>.outputs), with the status functions' state. It reads the
  // executor's state, so call it only inside start(). Built on demand because
  // JSON contexts cost more than scheduling itself, and a dry run needs none.
  std::function<EvalContext()> make_context;
  Clock::duration timeout{};  // from timeout-minutes; the executor calls stop() when it passes
  RunObserver* observer = nullptr;  // where to publish step events and log lines; may be null
};

struct JobOutcome {
  Result result = Result::success;  // success, failure or cancelled
  nlohmann::json outputs;  // the job's `outputs:`, evaluated: an object, or null for none
  std::string message;  // why it did not succeed, for people
};

struct JobCompletion {
  std::size_t index = 0;
  JobOutcome outcome;
};

class JobRunner {
 public:
  virtual ~JobRunner() = default;
  // Starts the job and returns without waiting for it.
  virtual void start(JobRequest request) = 0;
  // Asks a started job to stop soon (timeout, cancellation, fail-fast). It must
  // still report its completion through wait().
  virtual void stop(std::size_t index) = 0;
  // Blocks until a started job completes and returns it, or until `deadline` on
  // the executor's clock passes or wake() is called, then returns nullopt.
  // Without a deadline it waits for a completion or wake().
  virtual std::optional<JobCompletion> wait(std::optional<Clock::time_point> deadline) = 0;
  // Thread-safe: makes the current (or next) wait() return promptly.
  virtual void wake() = 0;
};

}  // namespace sandci::scheduler
