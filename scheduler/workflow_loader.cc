#include "scheduler/workflow_loader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <span>

#include "scheduler/did_you_mean.h"
#include "scheduler/expression.h"
#include "scheduler/glob.h"
#include "scheduler/matrix.h"
#include "scheduler/yaml_source.h"

namespace sandci::scheduler {
namespace {

using Keys = std::span<const std::string_view>;

// ---- small helpers -------------------------------------------------------------

// Actions identifiers (job ids, step ids, input ids): a letter or '_', then
// letters, digits, '-' or '_'.
bool valid_identifier(std::string_view id) {
  if (id.empty() || !(std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_'))
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

std::string describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "empty";
  return "'" + node.Scalar() + "'";
}

std::optional<bool> as_bool(const YAML::Node& node) {
  if (!node.IsScalar() || !is_plain(node)) return std::nullopt;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::optional<double> as_number(const YAML::Node& node) {
  if (!node.IsScalar() || !is_plain(node)) return std::nullopt;
  const std::string& s = node.Scalar();
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// YAML value to JSON with the YAML 1.2 core schema for plain scalars.
nlohmann::json to_json(const YAML::Node& node) {
  if (node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    auto array = nlohmann::json::array();
    for (const auto& child : node) array.push_back(to_json(child));
    return array;
  }
  if (node.IsMap()) {
    auto object = nlohmann::json::object();
    for (const auto& entry : node) object[entry.first.Scalar()] = to_json(entry.second);
    return object;
  }
  const std::string& s = node.Scalar();
  if (!is_plain(node)) return s;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
  if (auto b = as_bool(node)) return *b;
  std::int64_t integer = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), integer);
  if (ec == std::errc{} && end == s.data() + s.size()) return integer;
  if (auto d = as_number(node)) return *d;
  return s;
}

// ---- key sets --------------------------------------------------------------------

constexpr std::string_view kWorkflowKeys[] = {"name", "on", "env", "defaults", "concurrency", "jobs"};
constexpr std::string_view kWorkflowUnsupported[] = {"run-name", "permissions"};
constexpr std::string_view kJobKeys[] = {"name",     "needs",   "if",       "runs-on",
                                         "container", "env",    "timeout-minutes",
                                         "continue-on-error",   "strategy", "outputs",
                                         "defaults", "steps"};
constexpr std::string_view kJobUnsupported[] = {"permissions", "environment", "concurrency",
                                                "services",    "uses",        "with",
                                                "secrets"};
constexpr std::string_view kStepKeys[] = {"id",  "name", "run",  "shell", "working-directory",
                                          "env", "if",   "continue-on-error",
                                          "timeout-minutes", "uses", "with"};
constexpr std::string_view kDefaultsKeys[] = {"run"};
constexpr std::string_view kRunDefaultsKeys[] = {"shell", "working-directory"};
constexpr std::string_view kConcurrencyKeys[] = {"group", "cancel-in-progress"};
constexpr std::string_view kContainerKeys[] = {"image", "env", "options"};
constexpr std::string_view kContainerUnsupported[] = {"credentials", "ports", "volumes"};
constexpr std::string_view kStrategyKeys[] = {"matrix", "fail-fast", "max-parallel"};
constexpr std::string_view kPushKeys[] = {"branches", "branches-ignore", "tags",
                                          "tags-ignore", "paths", "paths-ignore"};
constexpr std::string_view kPullRequestKeys[] = {"branches", "branches-ignore", "types", "paths",
                                                 "paths-ignore"};
constexpr std::string_view kDispatchKeys[] = {"inputs"};
constexpr std::string_view kInputKeys[] = {"description", "required", "default", "type",
                                           "options"};
constexpr std::string_view kInputTypes[] = {"string", "boolean", "choice", "number",
                                            "environment"};
constexpr std::string_view kEvents[] = {"push", "pull_request", "workflow_dispatch"};
// GitHub events sandci knows by name but does not trigger on.
constexpr std::string_view kOtherGithubEvents[] = {
    "schedule",       "pull_request_target", "workflow_call",  "workflow_run",
    "release",        "issues",              "issue_comment",  "create",
    "delete",         "merge_group",         "repository_dispatch",
    "pull_request_review", "pull_request_review_comment", "deployment", "deployment_status",
    "check_run",      "check_suite",         "discussion",     "discussion_comment",
    "fork",           "gollum",              "label",          "milestone",
    "page_build",     "project",             "project_card",   "project_column",
    "public",         "registry_package",    "status",         "watch",
    "branch_protection_rule"};
constexpr std::string_view kPullRequestTypes[] = {
    "assigned",       "unassigned",     "labeled",          "unlabeled",
    "opened",         "edited",         "closed",           "reopened",
    "synchronize",    "converted_to_draft", "ready_for_review", "locked",
    "unlocked",       "review_requested", "review_request_removed", "auto_merge_enabled",
    "auto_merge_disabled", "milestoned", "demilestoned",     "enqueued",
    "dequeued"};
constexpr std::string_view kBuiltinActions[] = {"actions/checkout", "actions/upload-artifact",
                                                "actions/download-artifact"};

bool contains(Keys keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// One key: value of a mapping, with the key node for locations.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// A job's `needs` entries with where they are written, for later checks.
struct NeedsRef {
  std::string job;
  SourceLocation location;
};

class WorkflowParser {
 public:
  WorkflowParser(const YamlSource& source, Diagnostics& out) : source_(source), out_(out) {}

  std::optional<Workflow> parse(const YAML::Node& root);

 private:
  // ---- reporting ----
  void error(const SourceLocation& where, std::string message) {
    out_.push_back({where, std::move(message)});
    ++errors_;
  }
  void error(const YAML::Node& node, std::string message) {
    error(source_.at(node), std::move(message));
  }
  // Nulls carry the mark of the next token, so point at their key instead.
  SourceLocation where(const Entry& e) const {
    return e.value.IsNull() ? source_.at(e.key_node) : source_.at(e.value);
  }

  // ---- structure ----
  std::vector<Entry> mapping(const YAML::Node& node, const std::string& what, Keys allowed,
                             Keys unsupported = {});
  static const Entry* find(const std::vector<Entry>& entries, std::string_view key) {
    for (const auto& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }

  // ---- scalars ----
  std::optional<std::string> string_of(const Entry& e, bool check_expressions = true);
  std::optional<std::string> string_node(const YAML::Node& node, const SourceLocation& where,
                                         const std::string& what, bool check_expressions);
  std::vector<std::string> string_list(const Entry& e, bool check_expressions,
                                       std::vector<SourceLocation>* locations = nullptr);
  std::optional<bool> bool_of(const Entry& e);
  std::string bool_or_expression(const Entry& e);
  std::optional<double> positive_number(const Entry& e);
  StringMap string_map(const Entry& e);
  void check_expressions(const YAML::Node& scalar);
  void check_condition(const Entry& e);

  // ---- sections ----
  void parse_on(const Entry& e, Triggers& on);
  void parse_event(const std::string& name, const YAML::Node& key, const YAML::Node& value,
                   Triggers& on);
  std::vector<std::string> filters(const std::vector<Entry>& entries, std::string_view key);
  void exclusive(const std::vector<Entry>& entries, std::string_view a, std::string_view b);
  PushTrigger parse_push(const YAML::Node& value);
  PullRequestTrigger parse_pull_request(const YAML::Node& value);
  WorkflowDispatchTrigger parse_dispatch(const YAML::Node& value);
  std::optional<DispatchInput> parse_input(const Entry& e);
  RunDefaults parse_defaults(const Entry& e);
  Concurrency parse_concurrency(const Entry& e);
  void parse_jobs(const Entry& e, Workflow& workflow);
  Job parse_job(const Entry& e, std::vector<NeedsRef>& needs);
  Container parse_container(const Entry& e);
  Strategy parse_strategy(const Entry& e);
  Matrix parse_matrix(const Entry& e);
  std::vector<Step> parse_steps(const Entry& e, const std::string& job_id);
  Step parse_step(const YAML::Node& node, std::size_t index, const std::string& job_id);
  void check_uses(const Entry& e, const std::string& uses);
  void check_needs(const Workflow& workflow, const std::vector<std::vector<NeedsRef>>& needs);
  void check_cycles(const Workflow& workflow, const std::vector<std::vector<NeedsRef>>& needs);

  const YamlSource& source_;
  Diagnostics& out_;
  std::size_t errors_ = 0;
};

std::vector<Entry> WorkflowParser::mapping(const YAML::Node& node, const std::string& what,
                                           Keys allowed, Keys unsupported) {
  std::vector<Entry> entries;
  if (!node.IsMap()) {
    error(node, what + " must be a mapping, not " + describe(node));
    return entries;
  }
  std::set<std::string> seen;
  for (const auto& pair : node) {
    const YAML::Node& key = pair.first;
    if (!key.IsScalar()) {
      error(key, "keys in " + what + " must be strings");
      continue;
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      error(key, "duplicate key '" + name + "' in " + what);
      continue;
    }
    if (!allowed.empty() && !contains(allowed, name)) {
      if (contains(unsupported, name))
        error(key, "'" + name + "' in " + what + " is not supported by sandci");
      else
        error(key, "unknown key '" + name + "' in " + what + did_you_mean(name, allowed));
      continue;
    }
    entries.push_back({name, key, pair.second});
  }
  return entries;
}

void WorkflowParser::check_expressions(const YAML::Node& scalar) {
  for (const auto& e : check_interpolation(scalar.Scalar()))
    error(source_.inside(scalar, e.offset), "invalid expression: " + e.message);
}

std::optional<std::string> WorkflowParser::string_node(const YAML::Node& node,
                                                       const SourceLocation& where,
                                                       const std::string& what,
                                                       bool check) {
  if (node.IsNull()) return std::string{};
  if (!node.IsScalar()) {
    error(where, what + " must be a string, not " + describe(node));
    return std::nullopt;
  }
  if (check) check_expressions(node);
  return node.Scalar();
}

std::optional<std::string> WorkflowParser::string_of(const Entry& e, bool check) {
  return string_node(e.value, where(e), "'" + e.key + "'", check);
}

std::vector<std::string> WorkflowParser::string_list(const Entry& e, bool check,
                                                     std::vector<SourceLocation>* locations) {
  std::vector<std::string> list;
  auto add = [&](const YAML::Node& node, const SourceLocation& at) {
    if (auto s = string_node(node, at, "each entry of '" + e.key + "'", check)) {
      list.push_back(*s);
      if (locations) locations->push_back(at);
    }
  };
  if (e.value.IsSequence()) {
    for (const auto& item : e.value) add(item, source_.at(item));
  } else if (e.value.IsScalar()) {
    add(e.value, source_.at(e.value));
  } else {
    error(where(e), "'" + e.key + "' must be a string or a list of strings, not " +
                        describe(e.value));
  }
  return list;
}

std::optional<bool> WorkflowParser::bool_of(const Entry& e) {
  auto b = as_bool(e.value);
  if (!b) error(where(e), "'" + e.key + "' must be true or false, not " + describe(e.value));
  return b;
}

std::string WorkflowParser::bool_or_expression(const Entry& e) {
  if (auto b = as_bool(e.value)) return *b ? "true" : "false";
  if (e.value.IsScalar() && e.value.Scalar().find("${{") != std::string::npos) {
    check_expressions(e.value);
    return e.value.Scalar();
  }
  error(where(e), "'" + e.key + "' must be true, false or an expression, not " +
                      describe(e.value));
  return "false";
}

std::optional<double> WorkflowParser::positive_number(const Entry& e) {
  auto n = as_number(e.value);
  if (!n || *n <= 0) {
    error(where(e), "'" + e.key + "' must be a positive number, not " + describe(e.value));
    return std::nullopt;
  }
  return n;
}

StringMap WorkflowParser::string_map(const Entry& e) {
  StringMap map;
  for (const auto& item : mapping(e.value, "'" + e.key + "'", {})) {
    if (item.key.empty() || item.key.find('=') != std::string::npos) {
      error(item.key_node, "invalid name '" + item.key + "' in '" + e.key + "'");
      continue;
    }
    if (auto value = string_node(item.value, where(item), "'" + e.key + "." + item.key + "'", true))
      map.emplace_back(item.key, *value);
  }
  return map;
}

void WorkflowParser::check_condition(const Entry& e) {
  if (!e.value.IsScalar()) {
    if (!e.value.IsNull())
      error(where(e), "'if' must be a string, not " + describe(e.value));
    return;
  }
  // Validation reads the condition exactly as the runner will evaluate it.
  const std::string& text = e.value.Scalar();
  if (auto problem = sandci::scheduler::check_condition(text)) {
    error(source_.inside(e.value, problem->offset), "invalid expression: " + problem->message);
    return;
  }
  // `${{ }}` would run as success(): an empty wrapper is a mistake, not a condition.
  const std::size_t open = text.find("${{");
  if (open != std::string::npos && text.find_first_not_of(" \t\r\n") == open) {
    const std::size_t close = text.find("}}", open + 3);
    if (close != std::string::npos && text.find_first_not_of(" \t\r\n", open + 3) == close)
      error(source_.inside(e.value, open + 3), "invalid expression: expected an expression");
  }
}

// ---- on ---------------------------------------------------------------------------

void WorkflowParser::parse_on(const Entry& e, Triggers& on) {
  const YAML::Node& value = e.value;
  if (value.IsScalar()) {
    parse_event(value.Scalar(), value, YAML::Node{}, on);
  } else if (value.IsSequence()) {
    for (const auto& item : value) {
      if (!item.IsScalar())
        error(item, "each event in 'on' must be a name, not " + describe(item));
      else
        parse_event(item.Scalar(), item, YAML::Node{}, on);
    }
  } else if (value.IsMap()) {
    for (const auto& item : mapping(value, "'on'", {})) parse_event(item.key, item.key_node, item.value, on);
  } else {
    error(where(e), "'on' must name at least one event");
  }
  if (!on.push && !on.pull_request && !on.workflow_dispatch && errors_ == 0)
    error(where(e), "'on' must name at least one event");
}

void WorkflowParser::parse_event(const std::string& name, const YAML::Node& key,
                                 const YAML::Node& value, Triggers& on) {
  if (name == "push") {
    on.push = parse_push(value);
  } else if (name == "pull_request") {
    on.pull_request = parse_pull_request(value);
  } else if (name == "workflow_dispatch") {
    on.workflow_dispatch = parse_dispatch(value);
  } else if (contains(kOtherGithubEvents, name)) {
    error(key, "event '" + name +
                   "' is not supported by sandci (supported: push, pull_request, "
                   "workflow_dispatch)");
  } else {
    error(key, "unknown event '" + name + "'" + did_you_mean(name, kEvents) +
                   " (supported: push, pull_request, workflow_dispatch)");
  }
}

std::vector<std::string> WorkflowParser::filters(const std::vector<Entry>& entries,
                                                 std::string_view key) {
  const Entry* e = find(entries, key);
  if (!e) return {};
  std::vector<SourceLocation> locations;
  auto patterns = string_list(*e, false, &locations);
  for (const auto& [index, message] : check_filter_patterns(patterns))
    error(locations[index], "invalid pattern '" + patterns[index] + "' in '" + e->key + "': " + message);
  const bool has_positive = std::any_of(patterns.begin(), patterns.end(),
                                        [](const std::string& p) { return !p.starts_with('!'); });
  if (!patterns.empty() && !has_positive)
    error(where(*e), "'" + e->key + "' needs at least one pattern without '!'");
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
  auto entries = mapping(value, "'push'", kPushKeys);
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

PullRequestTrigger WorkflowParser::parse_pull_request(const YAML::Node& value) {
  PullRequestTrigger pr;
  if (value.IsNull() || !value.IsDefined()) return pr;
  auto entries = mapping(value, "'pull_request'", kPullRequestKeys);
  exclusive(entries, "branches", "branches-ignore");
  exclusive(entries, "paths", "paths-ignore");
  pr.branches = filters(entries, "branches");
  pr.branches_ignore = filters(entries, "branches-ignore");
  pr.paths = filters(entries, "paths");
  pr.paths_ignore = filters(entries, "paths-ignore");
  if (const Entry* types = find(entries, "types")) {
    std::vector<SourceLocation> locations;
    pr.types = string_list(*types, false, &locations);
    for (std::size_t i = 0; i < pr.types.size(); ++i)
      if (!contains(kPullRequestTypes, pr.types[i]))
        error(locations[i], "unknown pull_request type '" + pr.types[i] + "'" +
                                did_you_mean(pr.types[i], kPullRequestTypes));
  }
  return pr;
}

WorkflowDispatchTrigger WorkflowParser::parse_dispatch(const YAML::Node& value) {
  WorkflowDispatchTrigger dispatch;
  if (value.IsNull() || !value.IsDefined()) return dispatch;
  auto entries = mapping(value, "'workflow_dispatch'", kDispatchKeys);
  if (const Entry* inputs = find(entries, "inputs")) {
    if (inputs->value.IsNull()) return dispatch;
    for (const auto& input : mapping(inputs->value, "'inputs'", {}))
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
  auto fields = mapping(e.value, "input '" + e.key + "'", kInputKeys);
  if (const Entry* d = find(fields, "description")) input.description = string_of(*d, false).value_or("");
  if (const Entry* r = find(fields, "required")) input.required = bool_of(*r).value_or(false);
  if (const Entry* t = find(fields, "type")) {
    input.type = string_of(*t, false).value_or("string");
    if (!contains(kInputTypes, input.type))
      error(where(*t), "unknown input type '" + input.type + "'" +
                           did_you_mean(input.type, kInputTypes) +
                           " (supported: string, boolean, choice, number, environment)");
  }
  if (const Entry* o = find(fields, "options")) {
    input.options = string_list(*o, false);
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

// ---- workflow-level sections ---------------------------------------------------

RunDefaults WorkflowParser::parse_defaults(const Entry& e) {
  RunDefaults defaults;
  auto fields = mapping(e.value, "'defaults'", kDefaultsKeys);
  if (const Entry* run = find(fields, "run")) {
    auto run_fields = mapping(run->value, "'defaults.run'", kRunDefaultsKeys);
    if (const Entry* s = find(run_fields, "shell")) defaults.shell = string_of(*s).value_or("");
    if (const Entry* w = find(run_fields, "working-directory"))
      defaults.working_directory = string_of(*w).value_or("");
  }
  return defaults;
}

Concurrency WorkflowParser::parse_concurrency(const Entry& e) {
  Concurrency concurrency;
  if (e.value.IsScalar()) {
    check_expressions(e.value);
    concurrency.group = e.value.Scalar();
    return concurrency;
  }
  auto fields = mapping(e.value, "'concurrency'", kConcurrencyKeys);
  if (const Entry* g = find(fields, "group"))
    concurrency.group = string_of(*g).value_or("");
  else if (e.value.IsMap())
    error(where(e), "'concurrency' needs a 'group'");
  if (const Entry* c = find(fields, "cancel-in-progress"))
    concurrency.cancel_in_progress = bool_of(*c).value_or(false);
  return concurrency;
}

// ---- jobs -----------------------------------------------------------------------

void WorkflowParser::parse_jobs(const Entry& e, Workflow& workflow) {
  if (e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0)) {
    error(where(e), "'jobs' must define at least one job");
    return;
  }
  auto jobs = mapping(e.value, "'jobs'", {});
  std::vector<std::vector<NeedsRef>> needs;
  for (const auto& job : jobs) {
    std::vector<NeedsRef> job_needs;
    workflow.jobs.push_back(parse_job(job, job_needs));
    needs.push_back(std::move(job_needs));
  }
  check_needs(workflow, needs);
  check_cycles(workflow, needs);
}

Job WorkflowParser::parse_job(const Entry& e, std::vector<NeedsRef>& needs) {
  Job job;
  job.id = e.key;
  job.location = source_.at(e.key_node);
  if (!valid_identifier(job.id))
    error(e.key_node, "invalid job id '" + job.id +
                          "': it must start with a letter or '_' and hold only letters, "
                          "digits, '-' and '_'");
  const std::string what = "job '" + job.id + "'";
  if (e.value.IsNull()) {
    error(e.key_node, what + " has no steps");
    return job;
  }
  auto fields = mapping(e.value, what, kJobKeys, kJobUnsupported);
  if (!e.value.IsMap()) return job;
  std::optional<SourceLocation> strategy_at;  // set when the strategy parsed cleanly
  for (const auto& f : fields) {
    if (f.key == "name") {
      job.name = string_of(f).value_or("");
    } else if (f.key == "needs") {
      std::vector<SourceLocation> locations;
      job.needs = string_list(f, false, &locations);
      for (std::size_t i = 0; i < job.needs.size(); ++i) needs.push_back({job.needs[i], locations[i]});
    } else if (f.key == "if") {
      check_condition(f);
      job.if_condition = f.value.IsScalar() ? f.value.Scalar() : "";
    } else if (f.key == "runs-on") {
      job.runs_on = string_list(f, true);
      if (f.value.IsSequence() && job.runs_on.empty()) error(where(f), "'runs-on' must not be empty");
    } else if (f.key == "container") {
      job.container = parse_container(f);
    } else if (f.key == "env") {
      job.env = string_map(f);
    } else if (f.key == "timeout-minutes") {
      job.timeout_minutes = positive_number(f).value_or(job.timeout_minutes);
    } else if (f.key == "continue-on-error") {
      job.continue_on_error = bool_or_expression(f);
    } else if (f.key == "strategy") {
      const std::size_t before = errors_;
      job.strategy = parse_strategy(f);
      if (errors_ == before) strategy_at = where(f);
    } else if (f.key == "outputs") {
      job.outputs = string_map(f);
    } else if (f.key == "defaults") {
      job.defaults = parse_defaults(f);
    } else if (f.key == "steps") {
      job.steps = parse_steps(f, job.id);
    }
  }
  if (!find(fields, "steps")) error(e.key_node, what + " has no steps");
  // A well-formed matrix may still expand to more jobs than Actions allows.
  if (strategy_at && !job.strategy->matrix.empty())
    if (auto expanded = expand_matrix(job, 0); !expanded)
      error(*strategy_at, expanded.error().message);
  return job;
}

Container WorkflowParser::parse_container(const Entry& e) {
  Container container;
  if (e.value.IsScalar()) {
    check_expressions(e.value);
    container.image = e.value.Scalar();
    return container;
  }
  auto fields = mapping(e.value, "'container'", kContainerKeys, kContainerUnsupported);
  if (const Entry* i = find(fields, "image"))
    container.image = string_of(*i).value_or("");
  else if (e.value.IsMap())
    error(where(e), "'container' needs an 'image'");
  if (const Entry* env = find(fields, "env")) container.env = string_map(*env);
  if (const Entry* o = find(fields, "options")) container.options = string_of(*o).value_or("");
  return container;
}

Strategy WorkflowParser::parse_strategy(const Entry& e) {
  Strategy strategy;
  auto fields = mapping(e.value, "'strategy'", kStrategyKeys);
  if (const Entry* m = find(fields, "matrix")) strategy.matrix = parse_matrix(*m);
  if (const Entry* f = find(fields, "fail-fast")) strategy.fail_fast = bool_of(*f).value_or(true);
  if (const Entry* p = find(fields, "max-parallel")) {
    auto n = as_number(p->value);
    if (!n || *n < 1 || *n != std::floor(*n) || *n > 1e6)
      error(where(*p), "'max-parallel' must be a positive whole number, not " + describe(p->value));
    else
      strategy.max_parallel = static_cast<int>(*n);
  }
  return strategy;
}

Matrix WorkflowParser::parse_matrix(const Entry& e) {
  Matrix matrix;
  if (e.value.IsScalar()) {
    error(where(e), "a matrix computed by an expression is not supported by sandci; "
                    "list the dimensions instead");
    return matrix;
  }
  auto fields = mapping(e.value, "'matrix'", {});
  if (!e.value.IsMap()) return matrix;
  std::vector<std::string> dimension_names;
  // Scalars inside matrix values may hold expressions; check them all.
  auto check_all = [this](const YAML::Node& root) {
    std::vector<YAML::Node> stack{root};
    while (!stack.empty()) {
      YAML::Node node = stack.back();
      stack.pop_back();
      if (node.IsScalar()) check_expressions(node);
      if (node.IsSequence())
        for (const auto& child : node) stack.push_back(child);
      if (node.IsMap())
        for (const auto& child : node) stack.push_back(child.second);
    }
  };
  auto objects = [&](const Entry& list, std::vector<nlohmann::json>& into,
                     std::vector<std::pair<YAML::Node, nlohmann::json>>* with_nodes) {
    if (!list.value.IsSequence()) {
      error(where(list), "'" + list.key + "' must be a list of mappings, not " + describe(list.value));
      return;
    }
    for (const auto& item : list.value) {
      if (!item.IsMap()) {
        error(item, "each entry of '" + list.key + "' must be a mapping, not " + describe(item));
        continue;
      }
      check_all(item);
      into.push_back(to_json(item));
      if (with_nodes) with_nodes->emplace_back(item, into.back());
    }
  };
  std::vector<std::pair<YAML::Node, nlohmann::json>> excludes;
  for (const auto& f : fields) {
    if (f.key == "include") {
      objects(f, matrix.include, nullptr);
    } else if (f.key == "exclude") {
      objects(f, matrix.exclude, &excludes);
    } else {
      dimension_names.push_back(f.key);
      if (!f.value.IsSequence()) {
        error(where(f), "matrix dimension '" + f.key + "' must be a list of values, not " +
                            describe(f.value));
      } else if (f.value.size() == 0) {
        error(where(f), "matrix dimension '" + f.key + "' must not be empty");
      } else {
        check_all(f.value);
        std::vector<nlohmann::json> values;
        for (const auto& item : f.value) values.push_back(to_json(item));
        matrix.dimensions.emplace_back(f.key, std::move(values));
      }
    }
  }
  for (const auto& [node, object] : excludes) {
    for (const auto& pair : node) {
      const std::string key = pair.first.Scalar();
      if (std::find(dimension_names.begin(), dimension_names.end(), key) == dimension_names.end())
        error(pair.first, "'exclude' names '" + key + "', which is not a matrix dimension" +
                              did_you_mean(key, dimension_names));
    }
  }
  const bool has_combinations = std::any_of(fields.begin(), fields.end(), [](const Entry& f) {
    return f.key != "exclude";
  });
  if (!has_combinations) error(where(e), "the matrix has no dimensions and no 'include'");
  return matrix;
}

std::vector<Step> WorkflowParser::parse_steps(const Entry& e, const std::string& job_id) {
  std::vector<Step> steps;
  if (!e.value.IsSequence()) {
    error(where(e), "'steps' must be a list of steps, not " + describe(e.value));
    return steps;
  }
  if (e.value.size() == 0) {
    error(where(e), "'steps' must hold at least one step");
    return steps;
  }
  std::map<std::string, SourceLocation> ids;
  std::size_t index = 0;
  for (const auto& item : e.value) {
    Step step = parse_step(item, index++, job_id);
    if (!step.id.empty()) {
      const SourceLocation at = item.IsMap() && item["id"] ? source_.at(item["id"]) : step.location;
      auto [it, inserted] = ids.emplace(step.id, at);
      if (!inserted)
        error(at, "duplicate step id '" + step.id + "' in job '" + job_id +
                      "' (first used at line " + std::to_string(it->second.line) + ")");
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

Step WorkflowParser::parse_step(const YAML::Node& node, std::size_t index,
                                const std::string& job_id) {
  Step step;
  step.location = source_.at(node);
  const std::string what = "step " + std::to_string(index + 1) + " of job '" + job_id + "'";
  auto fields = mapping(node, what, kStepKeys);
  if (!node.IsMap()) return step;
  for (const auto& f : fields) {
    if (f.key == "id") {
      step.id = string_of(f, false).value_or("");
      if (!valid_identifier(step.id)) {
        error(where(f), "invalid step id '" + step.id +
                            "': it must start with a letter or '_' and hold only letters, "
                            "digits, '-' and '_'");
      }
    } else if (f.key == "name") {
      step.name = string_of(f).value_or("");
    } else if (f.key == "run") {
      step.run = string_of(f).value_or("");
    } else if (f.key == "uses") {
      step.uses = string_of(f, false).value_or("");
      check_uses(f, step.uses);
    } else if (f.key == "with") {
      step.with = string_map(f);
    } else if (f.key == "shell") {
      step.shell = string_of(f).value_or("");
    } else if (f.key == "working-directory") {
      step.working_directory = string_of(f).value_or("");
    } else if (f.key == "env") {
      step.env = string_map(f);
    } else if (f.key == "if") {
      check_condition(f);
      step.if_condition = f.value.IsScalar() ? f.value.Scalar() : "";
    } else if (f.key == "continue-on-error") {
      step.continue_on_error = bool_or_expression(f);
    } else if (f.key == "timeout-minutes") {
      step.timeout_minutes = positive_number(f);
    }
  }
  const Entry* run = find(fields, "run");
  const Entry* uses = find(fields, "uses");
  if (run && uses)
    error(uses->key_node, what + " has both 'run' and 'uses'; a step does one of them");
  else if (!run && !uses)
    error(node, what + " needs either 'run' or 'uses'");
  if (run)
    if (const Entry* with = find(fields, "with"))
      error(with->key_node, "'with' is only allowed in a step with 'uses'");
  if (uses)
    for (std::string_view key : {"shell", "working-directory"})
      if (const Entry* f = find(fields, key))
        error(f->key_node, "'" + f->key + "' is only allowed in a step with 'run'");
  return step;
}

void WorkflowParser::check_uses(const Entry& e, const std::string& uses) {
  const std::size_t at = uses.find('@');
  std::string name = uses.substr(0, at);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!contains(kBuiltinActions, name)) {
    error(where(e), "'uses: " + uses +
                        "' is not supported by sandci: only the built-in actions/checkout, "
                        "actions/upload-artifact and actions/download-artifact are");
    return;
  }
  if (at == std::string::npos || at + 1 == uses.size())
    error(where(e), "'uses: " + uses + "' must name a version, like " + name + "@v4");
}

// ---- dependencies ---------------------------------------------------------------

void WorkflowParser::check_needs(const Workflow& workflow,
                                 const std::vector<std::vector<NeedsRef>>& needs) {
  std::vector<std::string> ids;
  for (const auto& job : workflow.jobs) ids.push_back(job.id);
  for (std::size_t i = 0; i < workflow.jobs.size(); ++i)
    for (const auto& ref : needs[i])
      if (!workflow.find_job(ref.job))
        error(ref.location, "job '" + workflow.jobs[i].id + "' needs '" + ref.job +
                                "', which is not a job in this workflow" +
                                did_you_mean(ref.job, ids));
}

void WorkflowParser::check_cycles(const Workflow& workflow,
                                  const std::vector<std::vector<NeedsRef>>& needs) {
  const std::size_t n = workflow.jobs.size();
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index.emplace(workflow.jobs[i].id, i);
  // Iterative depth-first search in file order; a needs-edge into a job still on
  // the stack closes a cycle.
  enum Color { kWhite, kGray, kBlack };
  std::vector<Color> color(n, kWhite);
  std::set<std::set<std::size_t>> reported;
  for (std::size_t start = 0; start < n; ++start) {
    if (color[start] != kWhite) continue;
    std::vector<std::pair<std::size_t, std::size_t>> stack{{start, 0}};  // job, next needs index
    color[start] = kGray;
    while (!stack.empty()) {
      auto& [job, next] = stack.back();
      if (next == needs[job].size()) {
        color[job] = kBlack;
        stack.pop_back();
        continue;
      }
      auto it = index.find(needs[job][next++].job);
      if (it == index.end()) continue;
      const std::size_t target = it->second;
      if (color[target] == kWhite) {
        color[target] = kGray;
        stack.emplace_back(target, 0);
      } else if (color[target] == kGray) {
        std::vector<std::size_t> cycle;
        for (auto s = stack.size(); s-- > 0;) {
          cycle.push_back(stack[s].first);
          if (stack[s].first == target) break;
        }
        std::reverse(cycle.begin(), cycle.end());
        if (!reported.insert(std::set<std::size_t>(cycle.begin(), cycle.end())).second) continue;
        // Start at the job written first, so the message follows the file.
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        std::string path;
        for (auto j : cycle) path += workflow.jobs[j].id + " -> ";
        path += workflow.jobs[cycle.front()].id;
        const std::string& second = workflow.jobs[cycle.size() > 1 ? cycle[1] : cycle[0]].id;
        SourceLocation at = workflow.jobs[cycle.front()].location;
        for (const auto& ref : needs[cycle.front()])
          if (ref.job == second) {
            at = ref.location;
            break;
          }
        error(at, "dependency cycle: " + path + " (each job needs the next)");
      }
    }
  }
}

std::optional<Workflow> WorkflowParser::parse(const YAML::Node& root) {
  Workflow workflow;
  workflow.file = source_.file();
  auto fields = mapping(root, "the workflow", kWorkflowKeys, kWorkflowUnsupported);
  if (!root.IsMap()) return std::nullopt;
  for (const auto& f : fields) {
    if (f.key == "name")
      workflow.name = string_of(f, false).value_or("");
    else if (f.key == "on")
      parse_on(f, workflow.on);
    else if (f.key == "env")
      workflow.env = string_map(f);
    else if (f.key == "defaults")
      workflow.defaults = parse_defaults(f);
    else if (f.key == "concurrency")
      workflow.concurrency = parse_concurrency(f);
    else if (f.key == "jobs")
      parse_jobs(f, workflow);
  }
  if (!find(fields, "on")) error(root, "the workflow has no 'on': name the events that run it");
  if (!find(fields, "jobs")) error(root, "the workflow has no 'jobs'");
  if (errors_ > 0) return std::nullopt;
  return workflow;
}

void sort_diagnostics(Diagnostics& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.location.file, a.location.line, a.location.column) <
           std::tie(b.location.file, b.location.line, b.location.column);
  });
}

// Reads at most `limit` bytes; a larger file is refused without reading it all.
std::optional<std::string> read_file(const std::filesystem::path& path, const std::string& name,
                                     std::size_t limit, Diagnostics& out) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    out.push_back({{name, 0, 0}, "cannot read the file: " + ec.message()});
    return std::nullopt;
  }
  if (size > limit) {
    out.push_back({{name, 0, 0}, "the file is " + std::to_string(size) +
                                     " bytes; workflow files are limited to " +
                                     std::to_string(limit) + " bytes"});
    return std::nullopt;
  }
  std::ifstream in{path, std::ios::binary};
  // Read one byte more than allowed so a file that grew meanwhile is still caught.
  std::string text(limit + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit + 1));
  if (in.bad()) {
    out.push_back({{name, 0, 0}, "cannot read the file"});
    return std::nullopt;
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > limit) {
    out.push_back({{name, 0, 0}, "the file is larger than the limit of " + std::to_string(limit) +
                                     " bytes"});
    return std::nullopt;
  }
  return text;
}

bool has_workflow_extension(const std::filesystem::path& path) {
  const auto ext = path.extension();
  return ext == ".yml" || ext == ".yaml";
}

bool is_symbolic_link(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() == std::filesystem::file_type::symlink;
}

// A repository is untrusted input: a workflow folder or file that is a symbolic
// link could make the agent read (and quote in errors) a file outside the checkout.
std::optional<std::string> symlinked_component(const std::filesystem::path& root,
                                               const std::string& relative) {
  std::filesystem::path path = root;
  for (const auto& part : std::filesystem::path{relative}) {
    path /= part;
    if (is_symbolic_link(path)) return path.lexically_normal().string();
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& workflow_directories() {
  static const std::vector<std::string> dirs{".sandci/workflows", ".forgejo/workflows",
                                             ".gitea/workflows", ".github/workflows"};
  return dirs;
}

std::optional<Workflow> parse_workflow(std::string_view text, const std::string& file,
                                       Diagnostics& diagnostics, const LoaderLimits& limits) {
  Diagnostics local;
  std::optional<Workflow> workflow;
  if (text.size() > limits.max_file_bytes) {
    local.push_back({{file, 0, 0}, "the file is " + std::to_string(text.size()) +
                                       " bytes; workflow files are limited to " +
                                       std::to_string(limits.max_file_bytes) + " bytes"});
  } else {
    YamlSource source{text, file};
    if (auto root = source.parse({limits.max_depth, limits.max_nodes, limits.max_expanded_nodes},
                                 local)) {
      try {
        WorkflowParser parser{source, local};
        workflow = parser.parse(*root);
      } catch (const std::exception& e) {
        // yaml-cpp conversions should not throw on checked nodes; never let one escape.
        local.push_back({{file, 0, 0}, std::string{"internal error while validating: "} + e.what()});
        workflow.reset();
      }
    }
  }
  sort_diagnostics(local);
  diagnostics.insert(diagnostics.end(), local.begin(), local.end());
  return workflow;
}

LoadResult load_workflow_file(const std::filesystem::path& file, const LoaderLimits& limits) {
  LoadResult result;
  const std::string name = file.string();
  result.files.push_back(name);
  if (auto text = read_file(file, name, limits.max_file_bytes, result.diagnostics))
    if (auto workflow = parse_workflow(*text, name, result.diagnostics, limits))
      result.workflows.push_back(std::move(*workflow));
  return result;
}

LoadResult load_workflows(const std::filesystem::path& root, const LoaderLimits& limits) {
  LoadResult result;
  std::error_code ec;
  for (const auto& dir : workflow_directories()) {
    if (!std::filesystem::is_directory(root / dir, ec)) continue;
    result.directory = (root / dir).lexically_normal().string();
    if (auto link = symlinked_component(root, dir)) {
      result.diagnostics.push_back(
          {{*link, 0, 0}, "is a symbolic link; workflow folders must be real folders"});
      break;
    }
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(root / dir, ec)) {
      std::error_code type_ec;
      if (has_workflow_extension(entry.path()) &&
          (entry.is_regular_file(type_ec) || entry.is_symlink(type_ec)))
        paths.push_back(entry.path());
    }
    if (ec)
      result.diagnostics.push_back({{result.directory, 0, 0}, "cannot list the folder: " + ec.message()});
    std::sort(paths.begin(), paths.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    for (const auto& path : paths) {
      if (is_symbolic_link(path)) {
        const std::string name = path.lexically_normal().string();
        result.files.push_back(name);
        result.diagnostics.push_back(
            {{name, 0, 0}, "is a symbolic link; workflow files must be regular files"});
        continue;
      }
      auto one = load_workflow_file(path.lexically_normal(), limits);
      result.files.insert(result.files.end(), one.files.begin(), one.files.end());
      for (auto& w : one.workflows) result.workflows.push_back(std::move(w));
      result.diagnostics.insert(result.diagnostics.end(), one.diagnostics.begin(),
                                one.diagnostics.end());
    }
    break;
  }
  sort_diagnostics(result.diagnostics);
  return result;
}

}  // namespace sandci::scheduler
