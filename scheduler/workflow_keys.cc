#include "scheduler/workflow_keys.h"

#include <algorithm>

namespace sandci::scheduler {
namespace {

using enum KeyPlace;
using enum KeySupport;
using enum Expressions;

constexpr std::string_view kString = "a string";
constexpr std::string_view kStrings = "a string or a list of strings";
constexpr std::string_view kStringMap = "a mapping of names to strings";
constexpr std::string_view kBool = "true or false";
constexpr std::string_view kBoolOrExpression = "true, false or an expression";
constexpr std::string_view kPositiveOrExpression = "a positive number or an expression";
constexpr std::string_view kPatterns = "a pattern or a list of patterns";
constexpr std::string_view kPermissions = "read-all, write-all or a mapping of scopes";
constexpr std::string_view kNoToken = "jobs get no GitHub token";

// Order within a place matters: it is the order of did-you-mean ties.
constexpr KeySpec kKeys[] = {
    {workflow, "name", supported, kString, none, ""},
    {workflow, "on", supported, "an event, a list of events or a mapping of events", none, ""},
    {workflow, "env", supported, kStringMap, interpolated, ""},
    {workflow, "defaults", supported, "a mapping with 'run'", none, ""},
    {workflow, "concurrency", supported, "a group name or a mapping", interpolated, ""},
    {workflow, "jobs", supported, "a mapping of job ids to jobs", none, ""},
    {workflow, "run-name", supported, kString, interpolated, ""},
    {workflow, "permissions", ignored, kPermissions, none, kNoToken},

    {job, "name", supported, kString, interpolated, ""},
    {job, "needs", supported, "a job id or a list of job ids", none, ""},
    {job, "if", supported, "a condition", condition, ""},
    {job, "runs-on", supported, "a label or a list of labels", interpolated, ""},
    {job, "container", supported, "an image or a mapping", interpolated, ""},
    {job, "env", supported, kStringMap, interpolated, ""},
    {job, "timeout-minutes", supported, kPositiveOrExpression, none, ""},
    {job, "continue-on-error", supported, kBoolOrExpression, interpolated, ""},
    {job, "strategy", supported, "a mapping with 'matrix', 'fail-fast', 'max-parallel'",
     interpolated, ""},
    {job, "outputs", supported, kStringMap, interpolated, ""},
    {job, "defaults", supported, "a mapping with 'run'", none, ""},
    {job, "steps", supported, "a list of steps", none, ""},
    {job, "permissions", ignored, kPermissions, none, kNoToken},
    {job, "environment", ignored, "a name or a mapping with 'name' and 'url'", interpolated,
     "sandci has no deployment environments (no protection rules, no environment secrets)"},
    {job, "concurrency", ignored, "a group name or a mapping", interpolated,
     "sandci applies concurrency groups to whole workflows, not to jobs"},
    {job, "services", refused, "a mapping of service containers", interpolated,
     "service containers talk to the job over a network, and sandci jobs have none"},
    {job, "uses", supported, "a reusable workflow: ./.github/workflows/x.yml or owner/repo/path@ref",
     none, ""},
    {job, "with", supported, "a mapping of input names to values", interpolated, ""},
    {job, "secrets", supported, "a mapping of secret names to values, or 'inherit'", interpolated, ""},

    {step, "id", supported, kString, none, ""},
    {step, "name", supported, kString, interpolated, ""},
    {step, "run", supported, kString, interpolated, ""},
    {step, "shell", supported, kString, interpolated, ""},
    {step, "working-directory", supported, kString, interpolated, ""},
    {step, "env", supported, kStringMap, interpolated, ""},
    {step, "if", supported, "a condition", condition, ""},
    {step, "continue-on-error", supported, kBoolOrExpression, interpolated, ""},
    {step, "timeout-minutes", supported, kPositiveOrExpression, none, ""},
    {step, "uses", supported, "./path, owner/repo[/path]@ref", none, ""},
    {step, "with", supported, kStringMap, interpolated, ""},

    {defaults, "run", supported, "a mapping with 'shell', 'working-directory'", none, ""},
    {run_defaults, "shell", supported, kString, interpolated, ""},
    {run_defaults, "working-directory", supported, kString, interpolated, ""},

    {concurrency, "group", supported, kString, interpolated, ""},
    {concurrency, "cancel-in-progress", supported, "true, false or an expression", interpolated, ""},

    {container, "image", supported, kString, interpolated, ""},
    {container, "env", supported, kStringMap, interpolated, ""},
    {container, "options", supported, kString, interpolated, ""},
    {container, "credentials", refused, "a mapping with 'username', 'password'", interpolated,
     "images come from the agent's image store, never from a registry at run time"},
    {container, "ports", refused, "a list of ports", interpolated, "sandci jobs have no network"},
    {container, "volumes", refused, "a list of volumes", interpolated,
     "a job sees only its checkout, never a folder of the host"},

    {strategy, "matrix", supported, "a mapping of dimensions, 'include', 'exclude'", interpolated,
     ""},
    {strategy, "fail-fast", supported, kBool, none, ""},
    {strategy, "max-parallel", supported, "a positive whole number", none, ""},

    {push, "branches", supported, kPatterns, none, ""},
    {push, "branches-ignore", supported, kPatterns, none, ""},
    {push, "tags", supported, kPatterns, none, ""},
    {push, "tags-ignore", supported, kPatterns, none, ""},
    {push, "paths", supported, kPatterns, none, ""},
    {push, "paths-ignore", supported, kPatterns, none, ""},

    {pull_request, "branches", supported, kPatterns, none, ""},
    {pull_request, "branches-ignore", supported, kPatterns, none, ""},
    {pull_request, "types", supported, "an activity type or a list of them", none, ""},
    {pull_request, "paths", supported, kPatterns, none, ""},
    {pull_request, "paths-ignore", supported, kPatterns, none, ""},

    {workflow_dispatch, "inputs", supported, "a mapping of input ids to inputs", none, ""},

    {dispatch_input, "description", supported, kString, none, ""},
    {dispatch_input, "required", supported, kBool, none, ""},
    {dispatch_input, "default", supported, "a single value", none, ""},
    {dispatch_input, "type", supported, "string, boolean, choice, number or environment", none, ""},
    {dispatch_input, "options", supported, kStrings, none, ""},

    {schedule_entry, "cron", supported, "five cron fields, in UTC", none, ""},

    {workflow_call, "inputs", supported, "a mapping of input ids to inputs", none, ""},
    {workflow_call, "secrets", supported, "a mapping of secret names to secrets", none, ""},
    {workflow_call, "outputs", supported, "a mapping of output names to outputs", none, ""},

    {call_input, "description", supported, kString, none, ""},
    {call_input, "required", supported, kBool, none, ""},
    {call_input, "default", supported, "a single value", interpolated, ""},
    {call_input, "type", supported, "string, number or boolean", none, ""},

    {call_secret, "description", supported, kString, none, ""},
    {call_secret, "required", supported, kBool, none, ""},

    {call_output, "description", supported, kString, none, ""},
    {call_output, "value", supported, "an expression", interpolated, ""},
};

constexpr EventSpec kEvents[] = {
    {"push", true},
    {"pull_request", true},
    {"workflow_dispatch", true},
    {"schedule", true},
    {"pull_request_target", true},
    {"workflow_call", true},
    {"workflow_run", false},
    {"release", false},
    {"issues", false},
    {"issue_comment", false},
    {"create", false},
    {"delete", false},
    {"merge_group", false},
    {"repository_dispatch", false},
    {"pull_request_review", false},
    {"pull_request_review_comment", false},
    {"deployment", false},
    {"deployment_status", false},
    {"check_run", false},
    {"check_suite", false},
    {"discussion", false},
    {"discussion_comment", false},
    {"fork", false},
    {"gollum", false},
    {"label", false},
    {"milestone", false},
    {"page_build", false},
    {"project", false},
    {"project_card", false},
    {"project_column", false},
    {"public", false},
    {"registry_package", false},
    {"status", false},
    {"watch", false},
    {"branch_protection_rule", false},
};

constexpr std::string_view kPermissionScopes[] = {
    "actions",  "attestations",  "checks",        "contents",        "deployments",
    "discussions", "id-token",   "issues",        "models",          "packages",
    "pages",    "pull-requests", "repository-projects", "security-events", "statuses"};

}  // namespace

std::span<const std::string_view> permission_scopes() { return kPermissionScopes; }

std::span<const KeySpec> workflow_keys() { return kKeys; }

const KeySpec* find_key(KeyPlace place, std::string_view name) {
  auto it = std::find_if(std::begin(kKeys), std::end(kKeys), [&](const KeySpec& spec) {
    return spec.place == place && spec.name == name;
  });
  return it == std::end(kKeys) ? nullptr : &*it;
}

std::vector<std::string_view> suggestable_keys(KeyPlace place) {
  std::vector<std::string_view> names;
  for (const auto& spec : kKeys)
    if (spec.place == place && spec.support != refused) names.push_back(spec.name);
  return names;
}

std::span<const EventSpec> workflow_events() { return kEvents; }

const EventSpec* find_event(std::string_view name) {
  auto it = std::find_if(std::begin(kEvents), std::end(kEvents),
                         [&](const EventSpec& spec) { return spec.name == name; });
  return it == std::end(kEvents) ? nullptr : &*it;
}

std::vector<std::string_view> run_events() {
  std::vector<std::string_view> names;
  for (const auto& spec : kEvents)
    if (spec.run_by_sandci) names.push_back(spec.name);
  return names;
}

}  // namespace sandci::scheduler
