#include "scheduler/trigger.h"

#include <algorithm>

#include "scheduler/glob.h"

namespace sandci::scheduler {
namespace {

constexpr std::string_view kHeads = "refs/heads/";
constexpr std::string_view kTags = "refs/tags/";

TriggerDecision yes(std::string reason) { return {true, std::move(reason)}; }
TriggerDecision no(std::string reason) { return {false, std::move(reason)}; }

std::string branch_name(const std::string& ref) {
  return ref.starts_with(kHeads) ? ref.substr(kHeads.size()) : ref;
}

// Why a branch or tag name is filtered out by `include` / `ignore` (at most one of
// them is set), or nullopt when it passes. `key` is "branches" or "tags".
std::optional<std::string> name_filtered_out(const std::vector<std::string>& include,
                                             const std::vector<std::string>& ignore,
                                             const std::string& key, const std::string& name) {
  const std::string kind = key == "tags" ? "tag" : "branch";
  if (!include.empty() && !filter_matches(include, name))
    return kind + " '" + name + "' does not match the '" + key + "' filter";
  if (!ignore.empty() && filter_matches(ignore, name))
    return kind + " '" + name + "' matches the '" + key + "-ignore' filter";
  return std::nullopt;
}

// Path filters: `paths` runs when at least one changed file matches; `paths-ignore`
// runs when at least one changed file is not ignored. Unknown changes pass.
std::optional<std::string> paths_filtered_out(const std::vector<std::string>& paths,
                                              const std::vector<std::string>& paths_ignore,
                                              const std::optional<std::vector<std::string>>& changed) {
  if (!changed || (paths.empty() && paths_ignore.empty())) return std::nullopt;
  if (!paths.empty() && std::none_of(changed->begin(), changed->end(), [&](const std::string& p) {
        return filter_matches(paths, p);
      }))
    return "no changed file matches the 'paths' filter";
  if (!paths_ignore.empty() &&
      std::all_of(changed->begin(), changed->end(),
                  [&](const std::string& p) { return filter_matches(paths_ignore, p); }))
    return "every changed file matches the 'paths-ignore' filter";
  return std::nullopt;
}

TriggerDecision match_push(const PushTrigger& push, const Event& event) {
  const bool branch_filters = !push.branches.empty() || !push.branches_ignore.empty();
  const bool tag_filters = !push.tags.empty() || !push.tags_ignore.empty();
  if (event.ref.starts_with(kTags)) {
    const std::string tag = event.ref.substr(kTags.size());
    // With only branch filters, tag pushes do not run (and the reverse below).
    if (branch_filters && !tag_filters) return no("only branches are filtered; tag pushes do not run");
    if (auto why = name_filtered_out(push.tags, push.tags_ignore, "tags", tag)) return no(*why);
    // Path filters are not evaluated for tag pushes.
    return yes("push of tag '" + tag + "'");
  }
  const std::string branch = branch_name(event.ref);
  if (tag_filters && !branch_filters) return no("only tags are filtered; branch pushes do not run");
  if (auto why = name_filtered_out(push.branches, push.branches_ignore, "branches", branch))
    return no(*why);
  if (auto why = paths_filtered_out(push.paths, push.paths_ignore, event.changed_paths))
    return no(*why);
  return yes("push to branch '" + branch + "'");
}

TriggerDecision match_pull_request(const PullRequestTrigger& pr, const Event& event) {
  const auto& types = pr.types.empty() ? default_pull_request_types() : pr.types;
  if (std::find(types.begin(), types.end(), event.action) == types.end())
    return no(event.name + " action '" + event.action + "' is not one of the " +
              (pr.types.empty() ? "default" : "listed") + " types");
  const std::string base = branch_name(event.base_ref);
  if (auto why = name_filtered_out(pr.branches, pr.branches_ignore, "branches", base))
    return no("base " + *why);
  if (auto why = paths_filtered_out(pr.paths, pr.paths_ignore, event.changed_paths))
    return no(*why);
  return yes(event.name + " " + event.action + " against '" + base + "'");
}

TriggerDecision match_schedule(const ScheduleTrigger& schedule, const Event& event) {
  if (event.schedule.empty()) return yes("schedule");
  for (const auto& entry : schedule.crons)
    if (entry.cron == event.schedule) return yes("schedule '" + event.schedule + "'");
  return no("the workflow has no schedule '" + event.schedule + "'");
}

// Only workflow_call: a reusable workflow, which other workflows call.
bool only_called(const Triggers& on) {
  return on.workflow_call && !on.push && !on.pull_request && !on.pull_request_target &&
         !on.workflow_dispatch && !on.schedule;
}

}  // namespace

const std::vector<std::string>& default_pull_request_types() {
  static const std::vector<std::string> types{"opened", "synchronize", "reopened"};
  return types;
}

TriggerDecision match_trigger(const Workflow& workflow, const Event& event) {
  if (only_called(workflow.on))
    return no("a reusable workflow (only workflow_call): it runs when another workflow calls it");
  if (event.name == "push") {
    if (!workflow.on.push) return no("the workflow does not run on push");
    return match_push(*workflow.on.push, event);
  }
  if (event.name == "pull_request") {
    if (!workflow.on.pull_request) return no("the workflow does not run on pull_request");
    return match_pull_request(*workflow.on.pull_request, event);
  }
  if (event.name == "pull_request_target") {
    if (!workflow.on.pull_request_target) return no("the workflow does not run on pull_request_target");
    return match_pull_request(*workflow.on.pull_request_target, event);
  }
  if (event.name == "schedule") {
    if (!workflow.on.schedule) return no("the workflow does not run on schedule");
    return match_schedule(*workflow.on.schedule, event);
  }
  if (event.name == "workflow_dispatch") {
    if (!workflow.on.workflow_dispatch) return no("the workflow does not run on workflow_dispatch");
    return yes("workflow_dispatch");
  }
  return no("sandci does not run workflows on '" + event.name + "' events");
}

std::vector<const Workflow*> triggered_workflows(const std::vector<Workflow>& workflows,
                                                 const Event& event) {
  std::vector<const Workflow*> result;
  for (const auto& workflow : workflows)
    if (match_trigger(workflow, event).runs) result.push_back(&workflow);
  return result;
}

}  // namespace sandci::scheduler
