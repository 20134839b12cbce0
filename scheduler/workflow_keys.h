#pragma once
// What a workflow file may say, as data: for each mapping with fixed keys, which
// keys it takes, what each accepts, whether `${{ }}` in its value is checked as an
// expression, and whether sandci uses the key, ignores it (a note) or refuses it (an
// error). The loader validates against these tables and the docs describe them, so
// the two cannot drift apart. Events GitHub knows are listed the same way.
#include <span>
#include <string_view>
#include <vector>

namespace sandci::scheduler {

// The mappings whose keys are fixed.
enum class KeyPlace {
  workflow,
  job,
  step,
  defaults,      // workflow or job `defaults`
  run_defaults,  // `defaults.run`
  concurrency,   // workflow `concurrency` as a mapping
  container,
  strategy,
  push,
  pull_request,  // `pull_request` and `pull_request_target`
  workflow_dispatch,
  dispatch_input,  // one entry of `workflow_dispatch.inputs`
  schedule_entry,  // one `- cron: ...` entry of `schedule`
  workflow_call,   // `on.workflow_call`
  call_input,      // one entry of `workflow_call.inputs`
  call_secret,     // one entry of `workflow_call.secrets`
  call_output,     // one entry of `workflow_call.outputs`
};

enum class KeySupport {
  supported,  // read and used
  ignored,    // accepted; the loader reports a note saying why it has no effect
  refused,    // an error: sandci cannot do what it asks
};

// How `${{ }}` in the key's value is treated at load time.
enum class Expressions {
  none,          // taken literally (names, ids, filters) or a nested mapping
  interpolated,  // every `${{ }}` in its strings is checked; evaluated at run time
  condition,     // the whole value is a condition (`if`), `${{ }}` optional
};

struct KeySpec {
  KeyPlace place;
  std::string_view name;
  KeySupport support;
  std::string_view accepts;  // what the value may be, in words, for messages and docs
  Expressions expressions;
  std::string_view reason;  // ignored keys: why it has no effect under sandci
};

// Every key of every fixed-key mapping, grouped by place, in the order the docs list them.
std::span<const KeySpec> workflow_keys();

// The spec of `name` in `place`; nullptr when the key is unknown there.
const KeySpec* find_key(KeyPlace place, std::string_view name);

// The names a misspelt key in `place` may be a typo of (supported and ignored keys,
// table order): refused keys are never suggested.
std::vector<std::string_view> suggestable_keys(KeyPlace place);

struct EventSpec {
  std::string_view name;
  // true: read by sandci (it triggers runs, or for workflow_call declares a reusable
  // workflow's interface); false: accepted in `on:` with a note, never triggers.
  bool run_by_sandci;
};

// Every event GitHub Actions knows, the ones sandci runs first.
std::span<const EventSpec> workflow_events();

// The spec of event `name`; nullptr for a name GitHub does not know.
const EventSpec* find_event(std::string_view name);

// The scopes a `permissions` mapping may name (all ignored by sandci).
std::span<const std::string_view> permission_scopes();

// The names of the events sandci reads ("push", "pull_request", "workflow_dispatch",
// "schedule", "pull_request_target", "workflow_call").
std::vector<std::string_view> run_events();

}  // namespace sandci::scheduler
