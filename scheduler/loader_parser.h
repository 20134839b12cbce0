#pragma once
// Internal to the workflow loader: the parser that turns a YAML tree into a
// Workflow and its diagnostics. Its sections live in loader_*.cc by what they read
// (on:, jobs, steps, strategy); the helpers shared by all of them are declared here.
// Nothing outside scheduler/workflow_loader.cc and scheduler/loader_*.cc uses it.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "scheduler/context_availability.h"
#include "scheduler/diagnostic.h"
#include "scheduler/workflow.h"
#include "scheduler/workflow_keys.h"
#include "scheduler/yaml_source.h"
#include "scheduler/yaml_values.h"

namespace sandci::scheduler::loader {

// Actions identifiers (job ids, step ids, input ids): a letter or '_', then
// letters, digits, '-' or '_'.
bool valid_identifier(std::string_view id);
// Plain finite number scalars; nullopt for anything else.
std::optional<double> as_number(const YAML::Node& node);
// YAML value to JSON with the YAML 1.2 core schema for plain scalars.
nlohmann::json to_json(const YAML::Node& node);

template <typename Range>
bool contains(const Range& names, std::string_view name) {
  for (std::string_view candidate : names)
    if (candidate == name) return true;
  return false;
}

// One key: value of a mapping, with the key node for locations. `spec` is set for
// mappings with fixed keys (see workflow_keys.h) and null for free ones (env, jobs).
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  const KeySpec* spec = nullptr;
};

// A job's `needs` entries with where they are written, for later checks.
struct NeedsRef {
  std::string job;
  SourceLocation location;
};

class WorkflowParser {
 public:
  WorkflowParser(const YamlSource& source, Diagnostics& out) : source_(source), out_(out) {}

  // The workflow, or nullopt when the tree has errors (all appended to `out`).
  std::optional<Workflow> parse(const YAML::Node& root);

 private:
  // ---- reporting (loader_common.cc) ----
  void error(const SourceLocation& where, std::string message);
  void error(const YAML::Node& node, std::string message);
  // Notes never make a workflow fail to load.
  void note(const SourceLocation& where, std::string message);
  void note(const YAML::Node& node, std::string message);
  // Nulls carry the mark of the next token, so point at their key instead.
  SourceLocation where(const Entry& e) const;

  // ---- structure (loader_common.cc) ----
  // The entries of a mapping with fixed keys; unknown, refused and duplicate keys
  // are reported and left out.
  std::vector<Entry> mapping(const YAML::Node& node, const std::string& what, KeyPlace place);
  // The entries of a mapping with free keys (env, jobs, inputs, matrix).
  std::vector<Entry> mapping(const YAML::Node& node, const std::string& what);
  std::vector<Entry> entries_of(const YAML::Node& node, const std::string& what,
                                std::optional<KeyPlace> place);
  static const Entry* find(const std::vector<Entry>& entries, std::string_view key);

  // ---- scalars (loader_common.cc) ----
  // Strings and lists of a fixed key check `${{ }}` as its KeySpec says.
  std::optional<std::string> string_of(const Entry& e);
  std::optional<std::string> string_node(const YAML::Node& node, const SourceLocation& where,
                                         const std::string& what, bool check_expressions);
  std::vector<std::string> string_list(const Entry& e,
                                       std::vector<SourceLocation>* locations = nullptr);
  std::optional<bool> bool_of(const Entry& e);
  std::string bool_or_expression(const Entry& e);
  std::optional<double> positive_number(const Entry& e);
  StringMap string_map(const Entry& e);
  // A mapping, or (GitHub allows it for env) one expression giving the mapping:
  // then `expression` is set to its text and the map is empty.
  StringMap string_map_or_expression(const Entry& e, std::string& expression);
  // A scalar that is exactly one `${{ }}` expression (`timeout-minutes: ${{ ... }}`).
  static bool is_expression(const YAML::Node& node);
  // Its text after checking the expression.
  std::string expression_of(const Entry& e);
  void check_expressions(const YAML::Node& scalar);
  void check_condition(const Entry& e);

  // ---- context availability (loader_contexts.cc) ----
  // The key whose expressions are being read: its row of GitHub's context
  // availability table (null: a key the table does not list, not checked) and the
  // key as this workflow writes it, for messages ("jobs.build.if").
  struct ExpressionScope {
    const ContextAvailability* row = nullptr;
    std::string path;
  };
  // Sets the scope for as long as it lives, then puts the previous one back.
  class ScopeGuard {
   public:
    ScopeGuard(WorkflowParser& parser, ExpressionScope scope)
        : parser_(parser), saved_(std::exchange(parser.scope_, std::move(scope))) {}
    ~ScopeGuard() { parser_.scope_ = std::move(saved_); }
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

   private:
    WorkflowParser& parser_;
    ExpressionScope saved_;
  };
  // The scope of `table_key` (spelt as in the table), shown as `path`.
  [[nodiscard]] ScopeGuard scoped(std::string_view table_key, std::string path);
  // The scope of a key of a job (`jobs.<job_id>.<key>`), or of a step when `step`.
  [[nodiscard]] ScopeGuard job_key_scope(const std::string& job_id, const std::string& key);
  [[nodiscard]] ScopeGuard step_key_scope(const std::string& job_id, const std::string& key);
  // Reports each name the scope's key does not allow, at its place in `scalar`.
  void check_names(const YAML::Node& scalar, const std::vector<ExpressionName>& names);

  // ---- on: (loader_triggers.cc) ----
  void parse_on(const Entry& e, Triggers& on);
  // An event GitHub knows that sandci does not run, kept for its note.
  struct IdleEvent {
    std::string name;
    SourceLocation location;
  };
  void parse_event(const std::string& name, const YAML::Node& key, const YAML::Node& value,
                   Triggers& on, std::vector<IdleEvent>& idle);
  std::vector<std::string> filters(const std::vector<Entry>& entries, std::string_view key);
  void exclusive(const std::vector<Entry>& entries, std::string_view a, std::string_view b);
  PushTrigger parse_push(const YAML::Node& value);
  PullRequestTrigger parse_pull_request(const YAML::Node& value, const std::string& event);
  WorkflowDispatchTrigger parse_dispatch(const YAML::Node& value);
  // `on: workflow_call` (loader_calls.cc): inputs, secrets, outputs.
  WorkflowCallTrigger parse_workflow_call(const YAML::Node& value);
  std::optional<DispatchInput> parse_input(const Entry& e);
  ScheduleTrigger parse_schedule(const YAML::Node& key, const YAML::Node& value);
  std::optional<CronEntry> parse_cron(const YAML::Node& item);

  // ---- sections of both workflow and job (workflow_loader.cc) ----
  RunDefaults parse_defaults(const Entry& e);
  Concurrency parse_concurrency(const Entry& e);
  // `permissions` is ignored, but its scopes and levels are still checked.
  void check_permissions(const Entry& e);

  // ---- jobs (loader_jobs.cc) ----
  void parse_jobs(const Entry& e, Workflow& workflow);
  Job parse_job(const Entry& e, std::vector<NeedsRef>& needs);
  Container parse_container(const Entry& e);
  // `container.options`: flags a sandbox cannot honour are errors, the rest notes.
  void check_container_options(const Entry& e, const std::string& options);
  // A job with `uses:` (a reusable workflow call): its keys and what it passes.
  void parse_call(const std::vector<Entry>& fields, Job& job);
  // Where each kept key of a free mapping is written, in `kept`'s order.
  std::vector<std::pair<std::string, SourceLocation>> key_locations(const YAML::Node& map, const StringMap& kept);
  // `environment` is ignored, but its form is still checked.
  void check_environment(const Entry& e);
  void check_needs(const Workflow& workflow, const std::vector<std::vector<NeedsRef>>& needs);
  void check_cycles(const Workflow& workflow, const std::vector<std::vector<NeedsRef>>& needs);

  // ---- strategy (loader_strategy.cc) ----
  Strategy parse_strategy(const Entry& e);
  Matrix parse_matrix(const Entry& e);

  // ---- steps (loader_steps.cc) ----
  std::vector<YAML::Node> flatten_parallel(const YAML::Node& steps);
  std::vector<Step> parse_steps(const Entry& e, const std::string& job_id);
  Step parse_step(const YAML::Node& node, std::size_t index, const std::string& job_id);
  // The parsed `uses` of a step, or nullopt after reporting what is wrong with it.
  std::optional<UsesRef> check_uses(const Entry& e, const std::string& uses);

  const YamlSource& source_;
  Diagnostics& out_;
  std::size_t errors_ = 0;
  ExpressionScope scope_;
};

}  // namespace sandci::scheduler::loader
