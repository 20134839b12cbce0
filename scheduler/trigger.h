#pragma once
// Which workflows an event runs, with the GitHub Actions filter rules.
#include <optional>
#include <string>
#include <vector>

#include "scheduler/workflow.h"

namespace sandci::scheduler {

struct Event {
  // "push", "pull_request", "pull_request_target", "workflow_dispatch" or "schedule";
  // "workflow_call" never starts a workflow on its own.
  std::string name;
  std::string ref;       // push: "refs/heads/main" or "refs/tags/v1" ("main" means a branch)
  // pull_request(_target): the base branch, "main" or "refs/heads/main"
  std::string base_ref;
  std::string action;    // pull_request(_target): "opened", "synchronize", ...
  // Files the event changed, relative to the repository root. nullopt: unknown
  // (e.g. a new branch or a forced push), so path filters are not applied.
  std::optional<std::vector<std::string>> changed_paths = std::nullopt;
  // schedule: the cron line that fired, as written; empty: any of the workflow's.
  std::string schedule = {};
};

struct TriggerDecision {
  bool runs = false;
  std::string reason;  // why it does or does not run, for `sandci plan` and logs
};

// Decides whether `workflow` runs for `event`. pull_request_target takes the same
// filters as pull_request (base branch, types, paths); schedule runs a workflow
// that lists the fired cron line; a workflow with only workflow_call runs for none.
TriggerDecision match_trigger(const Workflow& workflow, const Event& event);

// The workflows that run for `event`, in the order given.
std::vector<const Workflow*> triggered_workflows(const std::vector<Workflow>& workflows,
                                                 const Event& event);

// pull_request activity types used when `types` is not given.
const std::vector<std::string>& default_pull_request_types();

}  // namespace sandci::scheduler
