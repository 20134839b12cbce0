#include "agent/store/run_store.h"

#include <array>
#include <utility>

namespace sandci::agent::store {

namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 6> kRunStates{{
    {RunState::queued, "queued"},
    {RunState::running, "running"},
    {RunState::success, "success"},
    {RunState::failure, "failure"},
    {RunState::error, "error"},
    {RunState::cancelled, "cancelled"},
}};

constexpr std::array<std::pair<JobState, std::string_view>, 7> kJobStates{{
    {JobState::queued, "queued"},
    {JobState::running, "running"},
    {JobState::success, "success"},
    {JobState::failure, "failure"},
    {JobState::skipped, "skipped"},
    {JobState::cancelled, "cancelled"},
    {JobState::error, "error"},
}};

template <typename State, std::size_t N>
std::string_view name_of(const std::array<std::pair<State, std::string_view>, N>& names,
                         State state) {
  for (const auto& [value, name] : names) {
    if (value == state) return name;
  }
  return "unknown";
}

template <typename State, std::size_t N>
std::optional<State> value_of(const std::array<std::pair<State, std::string_view>, N>& names,
                              std::string_view text) {
  for (const auto& [value, name] : names) {
    if (name == text) return value;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(RunState state) { return name_of(kRunStates, state); }
std::string_view to_string(JobState state) { return name_of(kJobStates, state); }
std::optional<RunState> parse_run_state(std::string_view text) {
  return value_of(kRunStates, text);
}
std::optional<JobState> parse_job_state(std::string_view text) {
  return value_of(kJobStates, text);
}

bool is_final(RunState state) { return state != RunState::queued && state != RunState::running; }

}  // namespace sandci::agent::store
