#pragma once
// What a built-in action (checkout, cache) gets from the job that runs it, so that
// each can live in its own file without seeing the runner's internals.
#include <expected>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "sandbox/sandbox.h"
#include "scheduler/step_sequencer.h"

namespace sandci::agent {

struct BuiltinStep {
  const scheduler::StepRequest* request = nullptr;  // with:, env, name (null for a post step)
  sandbox::Sandbox* sandbox = nullptr;
  // Writes a line to the step's log (masked by the runner).
  std::function<void(std::string_view)> log;
  // A fresh, empty host folder for this step's copies (removed with the run's scratch).
  std::function<std::filesystem::path(std::string_view what)> scratch;

  // The `with:` input `key`, or `fallback` when the step does not give it.
  std::string input(std::string_view key, std::string fallback = {}) const;
  // A failed step whose message is also logged.
  scheduler::StepOutcome fail(const std::string& message) const;
};

// `with:` booleans as actions read them (core.getBooleanInput): true/True/TRUE,
// false/False/FALSE; anything else is an error naming the input.
std::expected<bool, std::string> boolean_input(const BuiltinStep& step, std::string_view key, bool fallback);

}  // namespace sandci::agent
