#include "agent/runner/builtin_step.h"

namespace sandci::agent {

std::string BuiltinStep::input(std::string_view key, std::string fallback) const {
  if (request)
    for (const auto& [k, v] : request->with)
      if (k == key) return v;
  return fallback;
}

scheduler::StepOutcome BuiltinStep::fail(const std::string& message) const {
  if (log) log("error: " + message);
  scheduler::StepOutcome outcome;
  outcome.result = scheduler::Result::failure;
  outcome.message = message;
  return outcome;
}

std::expected<bool, std::string> boolean_input(const BuiltinStep& step, std::string_view key, bool fallback) {
  const std::string value = step.input(key);
  if (value.empty()) return fallback;
  if (value == "true" || value == "True" || value == "TRUE") return true;
  if (value == "false" || value == "False" || value == "FALSE") return false;
  return std::unexpected("input '" + std::string(key) + "' must be true or false, not '" + value + "'");
}

}  // namespace sandci::agent
