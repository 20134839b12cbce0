#pragma once
// Which workflows an event runs, with the GitHub Actions filter rules.
#include <optional>
#include <string>
#include <vector>

#include "scheduler/workflow.h"

namespace sandci::scheduler {

struct Event {
  std::string name;      // "push", "pull_request" or "workflow_dispatch"
  std::string ref;       // push: "refs/heads/main" or "refs/tags/v1" ("main" means a branch)
  std::string base_ref;  // pull_request: the base branch, "main" or "refs/heads/main"
  std::string action;    // pull_request: "opened", "synchronize", ...
  // Files the event changed, relative to the repository root. nullopt: unknown
  // (e.g. a new branch or a forced push), so path filters are not applied.
  std::optional<std::vector<std::string>> changed_paths;
};

struct TriggerDecision {
  bool runs = false;
  std::string reason;  // why it does or does not run, for `sandci plan` and logs
};

// Decides whether `workflow` runs for `event`.
TriggerDecision match_trigger(const Workflow& workflow, const Event& event);

// The workflows that run for `event`, in the order given.
std::vector<const Workflow*> triggered_workflows(const std::vector<Workflow>& workflows,
                                                 const Event& event);

// pull_request activity types used when `types` is not given.
const std::vector<std::string>& default_pull_request_types();

}  // namespace sandci::scheduler
