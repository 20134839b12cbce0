#pragma once
// The steps of one job, as Actions runs them, for JobRunner implementations:
// steps in order; a step's `if:` evaluated with the steps context and the
// status functions (by default success(): no earlier step failed and the job
// was not cancelled); step continue-on-error; steps.<id>.outputs / outcome /
// conclusion; GITHUB_ENV updates seen by later steps; and the job's `outputs:`
// evaluated at the end. Pure: the callback does the actual work (processes,
// files, timeouts); this only sequences and evaluates.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/events.h"
#include "scheduler/expression.h"
#include "scheduler/result.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

// One step to run, with its expressions already substituted.
struct StepRequest {
  std::size_t index = 0;  // position in the job's steps
  const Step* step = nullptr;
  std::string name;  // display name: `name:` interpolated, else "Run <uses or first line of run>"
  std::optional<std::string> run;  // script with `${{ }}` substituted (run steps)
  StringMap with;                  // inputs, substituted (uses steps)
  StringMap env;  // env context (workflow + job + GITHUB_ENV updates) then step env, substituted
  // From timeout-minutes: the callback must stop the step when it passes and
  // report a failure (message "timed out").
  std::optional<std::chrono::duration<double>> timeout;
  const EvalContext* context = nullptr;  // what the step's expressions saw
};

struct StepOutcome {
  Result result = Result::success;  // success, failure or cancelled
  StringMap outputs;      // written to GITHUB_OUTPUT
  StringMap env_updates;  // written to GITHUB_ENV: later steps see them in env
  std::string message;    // why it failed ("exit code 2", "timed out")
};

using StepCallback = std::function<StepOutcome(const StepRequest&)>;

struct StepReport {
  std::string name;
  Result outcome = Result::skipped;     // before continue-on-error
  Result conclusion = Result::skipped;  // after continue-on-error
  std::string message;
};

struct StepsResult {
  Result result = Result::success;  // the job's result: success, failure or cancelled
  nlohmann::json outputs = nlohmann::json::object();  // the job's `outputs:`, evaluated
  std::vector<StepReport> steps;
  std::vector<std::string> errors;  // job outputs that could not be evaluated
};

struct StepSequencerOptions {
  // Polled before each step: true once the job was told to stop. Later steps
  // then run only when their `if:` holds after cancellation (always(), cancelled()).
  std::function<bool()> cancelled;
  RunObserver* observer = nullptr;  // step_started / step_finished events
  const Clock* clock = nullptr;     // event times; none: events carry no time
  std::size_t job = kNoIndex;       // the job index the events name
};

// Runs `job`'s steps through `run_step`. `context` holds the job's contexts
// (github, env, matrix, needs, ...); the sequencer adds `steps`.
StepsResult run_steps(const Job& job, EvalContext context, const StepCallback& run_step,
                      const StepSequencerOptions& options = {});

// "Run actions/checkout@v4" / "Run make test" when a step has no name.
std::string default_step_name(const Step& step);

}  // namespace sandci::scheduler
