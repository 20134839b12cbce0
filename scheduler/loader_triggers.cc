// The workflow parser's `on:` section: events, their filters, dispatch inputs, cron
// schedules and a reusable workflow's `workflow_call` interface.
#include <algorithm>

#include "scheduler/did_you_mean.h"
#include "scheduler/glob.h"
#include "scheduler/loader_parser.h"

namespace sandci::scheduler::loader {
namespace {

constexpr std::string_view kInputTypes[] = {"string", "boolean", "choice", "number",
                                            "environment"};
constexpr std::string_view kPullRequestTypes[] = {
    "assigned",       "unassigned",     "labeled",          "unlabeled",
    "opened",         "edited",         "closed",           "reopened",
    "synchronize",    "converted_to_draft", "ready_for_review", "locked",
    "unlocked",       "review_requested", "review_request_removed", "auto_merge_enabled",
    "auto_merge_disabled", "milestoned", "demilestoned",     "enqueued",
    "dequeued"};

}  // namespace

void WorkflowParser::parse_on(const Entry& e, Triggers& on) {
  const YAML::Node& value = e.value;
  std::vector<IdleEvent> idle;
  if (value.IsScalar()) {
    parse_event(value.Scalar(), value, YAML::Node{}, on, idle);
  } else if (value.IsSequence()) {
    for (const auto& item : value) {
      if (!item.IsScalar())
        error(item, "each event in 'on' must be a name, not " + describe(item));
      else
        parse_event(item.Scalar(), item, YAML::Node{}, on, idle);
    }
  } else if (value.IsMap()) {
    for (const auto& item : mapping(value, "'on'"))
      parse_event(item.key, item.key_node, item.value, on, idle);
  } else {
    error(where(e), "'on' must name at least one event");
    return;
  }
  // workflow_call alone is enough for a valid `on:`, though it starts nothing by itself.
  const bool runs = on.push || on.pull_request || on.pull_request_target || on.workflow_dispatch ||
                    on.schedule;
  if (!runs && !on.workflow_call && idle.empty() && errors_ == 0)
    error(where(e), "'on' must name at least one event");
  // The note says what the workflow still does, so it is written once all events are read.
  std::string runs_for;
  for (const auto& [name, present] : {std::pair{"push", on.push.has_value()},
                                      {"pull_request", on.pull_request.has_value()},
                                      {"pull_request_target", on.pull_request_target.has_value()},
                                      {"workflow_dispatch", on.workflow_dispatch.has_value()},
                                      {"schedule", on.schedule.has_value()}})
    if (present) runs_for += (runs_for.empty() ? "" : ", ") + std::string{name};
  for (const auto& event : idle)
    note(event.location, "event '" + event.name + "' is not run by sandci; " +
                             (runs             ? "the workflow runs for " + runs_for
                              : on.workflow_call ? std::string{"the workflow runs only when another workflow calls it"}
                                                 : std::string{"sandci never triggers this workflow"}));
}

void WorkflowParser::parse_event(const std::string& name, const YAML::Node& key,
                                 const YAML::Node& value, Triggers& on,
                                 std::vector<IdleEvent>& idle) {
  if (name == "push") {
    on.push = parse_push(value);
  } else if (name == "pull_request") {
    on.pull_request = parse_pull_request(value, name);
  } else if (name == "pull_request_target") {
    on.pull_request_target = parse_pull_request(value, name);
  } else if (name == "workflow_dispatch") {
    on.workflow_dispatch = parse_dispatch(value);
  } else if (name == "schedule") {
    on.schedule = parse_schedule(key, value);
  } else if (name == "workflow_call") {
    on.workflow_call = parse_workflow_call(value);  // loader_calls.cc
  } else if (find_event(name)) {
    // What such an event is configured with (cron lines, types) is not checked.
    idle.push_back({name, source_.at(key)});
  } else {
    std::vector<std::string_view> known;
    for (const auto& event : workflow_events()) known.push_back(event.name);
    error(key, "unknown event '" + name + "'" + did_you_mean(name, known));
  }
}

std::vector<std::string> WorkflowParser::filters(const std::vector<Entry>& entries,
                                                 std::string_view key) {
  const Entry* e = find(entries, key);
  if (!e) return {};
  std::vector<SourceLocation> locations;
  auto patterns = string_list(*e, &locations);
  for (const auto& [index, message] : check_filter_patterns(patterns))
    error(locations[index], "invalid pattern '" + patterns[index] + "' in '" + e->key + "': " + message);
  // Only '!' patterns match nothing: `tags: ['!**']` beside `branches:` is how
  // workflows say "branches, never tags", and GitHub runs them; a note, not an error.
  const bool has_positive = std::any_of(patterns.begin(), patterns.end(),
                                        [](const std::string& p) { return !p.starts_with('!'); });
  if (!patterns.empty() && !has_positive)
    note(where(*e), "'" + e->key + "' has only '!' patterns, so it matches nothing" +
                        (e->key == "branches" || e->key == "tags"
                             ? " (to leave some out and keep the rest, use '" + e->key + "-ignore')"
                             : std::string()));
  return patterns;
}

void WorkflowParser::exclusive(const std::vector<Entry>& entries, std::string_view a,
                               std::string_view b) {
  if (find(entries, a) && find(entries, b))
    error(find(entries, b)->key_node, "'" + std::string{a} + "' and '" + std::string{b} +
                                          "' cannot both be used for the same event");
}

PushTrigger WorkflowParser::parse_push(const YAML::Node& value) {
  PushTrigger push;
  if (value.IsNull() || !value.IsDefined()) return push;
  auto entries = mapping(value, "'push'", KeyPlace::push);
  exclusive(entries, "branches", "branches-ignore");
  exclusive(entries, "tags", "tags-ignore");
  exclusive(entries, "paths", "paths-ignore");
  push.branches = filters(entries, "branches");
  push.branches_ignore = filters(entries, "branches-ignore");
  push.tags = filters(entries, "tags");
  push.tags_ignore = filters(entries, "tags-ignore");
  push.paths = filters(entries, "paths");
  push.paths_ignore = filters(entries, "paths-ignore");
  return push;
}

PullRequestTrigger WorkflowParser::parse_pull_request(const YAML::Node& value,
                                                      const std::string& event) {
  PullRequestTrigger pr;
  if (value.IsNull() || !value.IsDefined()) return pr;
  auto entries = mapping(value, "'" + event + "'", KeyPlace::pull_request);
  exclusive(entries, "branches", "branches-ignore");
  exclusive(entries, "paths", "paths-ignore");
  pr.branches = filters(entries, "branches");
  pr.branches_ignore = filters(entries, "branches-ignore");
  pr.paths = filters(entries, "paths");
  pr.paths_ignore = filters(entries, "paths-ignore");
  if (const Entry* types = find(entries, "types")) {
    std::vector<SourceLocation> locations;
    pr.types = string_list(*types, &locations);
    for (std::size_t i = 0; i < pr.types.size(); ++i)
      if (!contains(kPullRequestTypes, pr.types[i]))
        error(locations[i], "unknown " + event + " type '" + pr.types[i] + "'" +
                                did_you_mean(pr.types[i], kPullRequestTypes));
  }
  return pr;
}

WorkflowDispatchTrigger WorkflowParser::parse_dispatch(const YAML::Node& value) {
  WorkflowDispatchTrigger dispatch;
  if (value.IsNull() || !value.IsDefined()) return dispatch;
  auto entries = mapping(value, "'workflow_dispatch'", KeyPlace::workflow_dispatch);
  if (const Entry* inputs = find(entries, "inputs")) {
    if (inputs->value.IsNull()) return dispatch;
    for (const auto& input : mapping(inputs->value, "'inputs'"))
      if (auto parsed = parse_input(input)) dispatch.inputs.push_back(std::move(*parsed));
  }
  return dispatch;
}

std::optional<DispatchInput> WorkflowParser::parse_input(const Entry& e) {
  DispatchInput input;
  input.name = e.key;
  if (!valid_identifier(e.key))
    error(e.key_node, "invalid input id '" + e.key +
                          "': it must start with a letter or '_' and hold only letters, "
                          "digits, '-' and '_'");
  if (e.value.IsNull()) return input;
  auto fields = mapping(e.value, "input '" + e.key + "'", KeyPlace::dispatch_input);
  if (const Entry* d = find(fields, "description")) input.description = string_of(*d).value_or("");
  if (const Entry* r = find(fields, "required")) input.required = bool_of(*r).value_or(false);
  if (const Entry* t = find(fields, "type")) {
    input.type = string_of(*t).value_or("string");
    if (!contains(kInputTypes, input.type))
      error(where(*t), "unknown input type '" + input.type + "'" +
                           did_you_mean(input.type, kInputTypes) +
                           " (supported: string, boolean, choice, number, environment)");
  }
  if (const Entry* o = find(fields, "options")) {
    input.options = string_list(*o);
    if (input.type != "choice") error(o->key_node, "'options' is only allowed with type: choice");
  }
  if (input.type == "choice" && input.options.empty())
    error(e.key_node, "input '" + e.key + "' of type choice needs a non-empty 'options' list");
  if (const Entry* d = find(fields, "default")) {
    if (!d->value.IsScalar() && !d->value.IsNull()) {
      error(where(*d), "'default' must be a single value, not " + describe(d->value));
    } else {
      input.default_value = to_json(d->value);
      const std::string text = d->value.Scalar();
      if (input.type == "boolean" && !as_bool(d->value))
        error(where(*d), "the default of a boolean input must be true or false");
      if (input.type == "number" && !as_number(d->value))
        error(where(*d), "the default of a number input must be a number");
      if (input.type == "choice" && !input.options.empty() &&
          std::find(input.options.begin(), input.options.end(), text) == input.options.end())
        error(where(*d), "the default '" + text + "' is not one of the options");
    }
  }
  return input;
}

ScheduleTrigger WorkflowParser::parse_schedule(const YAML::Node& key, const YAML::Node& value) {
  ScheduleTrigger schedule;
  const std::string shape = "'schedule' needs a list of cron entries, such as:  - cron: '30 4 * * *'";
  if (!value.IsDefined() || value.IsNull() || !value.IsSequence() || value.size() == 0) {
    error(value.IsDefined() && !value.IsNull() ? value : key, shape);
    return schedule;
  }
  for (const auto& item : value)
    if (auto entry = parse_cron(item)) schedule.crons.push_back(std::move(*entry));
  return schedule;
}

std::optional<CronEntry> WorkflowParser::parse_cron(const YAML::Node& item) {
  if (!item.IsMap()) {
    error(item, "each 'schedule' entry must be a mapping such as {cron: '30 4 * * *'}, not " + describe(item));
    return std::nullopt;
  }
  auto fields = mapping(item, "a 'schedule' entry", KeyPlace::schedule_entry);
  const Entry* cron = find(fields, "cron");
  if (!cron) {
    error(item, "a 'schedule' entry needs 'cron'");
    return std::nullopt;
  }
  auto text = string_of(*cron);
  if (!text) return std::nullopt;
  auto parsed = CronSchedule::parse(*text);
  if (!parsed) {
    error(source_.inside(cron->value, parsed.error().offset),
          "invalid cron '" + *text + "': " + parsed.error().message);
    return std::nullopt;
  }
  return CronEntry{parsed->text(), source_.at(cron->value), std::move(*parsed)};
}

}  // namespace sandci::scheduler::loader
