#pragma once
// The workflow model: what a workflow file says, after loading and validation.
// String fields that may hold `${{ }}` expressions are kept as written; they are
// evaluated at run time by the executor or the job runner.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/cron.h"
#include "scheduler/diagnostic.h"
#include "scheduler/uses_ref.h"

namespace sandci::scheduler {

// Insertion-ordered string map: env and outputs keep the order of the file.
using StringMap = std::vector<std::pair<std::string, std::string>>;

struct Step {
  SourceLocation location;
  std::string id;    // empty when the file gives none
  std::string name;  // as written (may hold expressions); empty when not given
  std::optional<std::string> run;
  std::string uses;  // "actions/checkout@v4" as written; empty for run steps
  std::optional<UsesRef> action;  // `uses` read by parse_uses; set for every uses step
  StringMap with;
  std::string shell;              // empty: default shell
  std::string working_directory;  // empty: job/workflow default
  StringMap env;
  // `env: ${{ ... }}`: an expression giving the whole mapping, kept as written;
  // the executor evaluates it when the job starts. Empty: `env` is the mapping.
  std::string env_expression;
  std::string if_condition;  // empty: success()
  std::string continue_on_error = "false";  // "true", "false" or an expression
  std::optional<double> timeout_minutes;
  std::string timeout_expression;  // `timeout-minutes: ${{ ... }}`; evaluated when the job starts
};

struct Container {
  std::string image;
  StringMap env;
  std::string options;
};

struct Matrix {
  // Dimensions in file order; each value is any JSON value (string, number, object...).
  std::vector<std::pair<std::string, std::vector<nlohmann::json>>> dimensions;
  std::vector<nlohmann::json> include;  // objects
  std::vector<nlohmann::json> exclude;  // objects
  // `matrix: ${{ fromJSON(...) }}`: the whole matrix from an expression, kept as
  // written; dimensions, include and exclude are then empty until it is resolved.
  std::string expression;
  // Dimensions written as an expression (`os: ${{ fromJSON(...) }}`): name -> text.
  // Such a dimension is in `dimensions` with no values until it is resolved;
  // `include` and `exclude` given as an expression are here too, under those names.
  StringMap dimension_expressions;
  bool empty() const {
    return dimensions.empty() && include.empty() && expression.empty() && dimension_expressions.empty();
  }
  bool from_expression() const { return !expression.empty() || !dimension_expressions.empty(); }
};

struct Strategy {
  Matrix matrix;
  bool fail_fast = true;
  std::optional<int> max_parallel;
};

struct RunDefaults {
  std::string shell;
  std::string working_directory;
};

// What a job that calls a reusable workflow (`uses:` on a job) passes it.
struct WorkflowCall {
  std::string uses;  // as written
  UsesRef ref;
  SourceLocation location;  // of the `uses` value
  StringMap with;           // values as written (may hold expressions)
  std::vector<SourceLocation> with_locations;  // of each `with` key
  bool inherit_secrets = false;  // `secrets: inherit`
  StringMap secrets;             // `secrets:` mapping, values as written
  std::vector<SourceLocation> secret_locations;  // of each `secrets` key
  // Set by expand_calls: the caller's own needs (its `needs` then also lists the
  // called jobs), and the prefixes of the called jobs' ids, one per matrix
  // combination of the caller ("caller", or "caller/0", "caller/1", ...).
  std::vector<std::string> caller_needs;
  std::vector<std::string> scopes;
  bool expanded = false;
};

struct WorkflowCallInput {
  std::string name, description, type = "string";  // string, number or boolean
  bool required = false;
  std::optional<nlohmann::json> default_value;  // may be a string holding an expression
};

struct WorkflowCallOutput {
  std::string name, description, value;  // value: `${{ jobs.<id>.outputs.<name> }}`
};

// `on: workflow_call`: what a reusable workflow takes and gives.
struct WorkflowCallTrigger {
  std::vector<WorkflowCallInput> inputs;
  std::vector<std::pair<std::string, bool>> secrets;  // name, required
  std::vector<WorkflowCallOutput> outputs;
};

// The env and defaults.run of the workflow a job belongs to; set on the jobs of
// a called workflow, whose own workflow-level env and defaults replace the
// caller's (as on GitHub).
struct WorkflowScope {
  StringMap env;
  std::string env_file;  // the called workflow's file, for messages
  RunDefaults defaults;
};

// A called job's link to the job that called its workflow (set by expand_calls).
struct CallFrame {
  std::string caller;       // id of the calling job in the expanded workflow
  std::string scope;        // prefix of the called jobs' ids ("caller" or "caller/1")
  nlohmann::json matrix;    // the caller's matrix combination; null without one
  std::string file;         // the called workflow's file
  WorkflowCallTrigger declared;  // its inputs (types, defaults) and secrets
};

struct Job {
  SourceLocation location;
  std::string id;
  std::string name;  // as written; empty: the id
  std::vector<std::string> needs;
  std::string if_condition;  // empty: success()
  std::vector<std::string> runs_on;
  std::optional<Container> container;
  StringMap env;
  std::string env_expression;  // `env: ${{ ... }}` (see Step::env_expression)
  double timeout_minutes = 360;
  std::string timeout_expression;  // `timeout-minutes: ${{ ... }}`; evaluated when the job starts
  std::string continue_on_error = "false";  // "true", "false" or an expression
  std::optional<Strategy> strategy;
  StringMap outputs;
  RunDefaults defaults;
  std::vector<Step> steps;
  // A job with `uses:` calls a reusable workflow and has no steps. After
  // expand_calls it stays in the workflow as the point its dependents wait for:
  // it needs every called job, runs nothing itself, and its outputs are the called
  // workflow's outputs.
  std::optional<WorkflowCall> call;
  // Jobs of a called workflow: the call they belong to (shared by the jobs of one call).
  std::shared_ptr<const CallFrame> frame;
  // Jobs of a called workflow: that workflow's env and defaults.run; null: the top workflow's.
  std::shared_ptr<const WorkflowScope> scope;
};

// ---- triggers (`on:`) ----

struct PushTrigger {
  std::vector<std::string> branches, branches_ignore, tags, tags_ignore, paths, paths_ignore;
};

// `pull_request` and `pull_request_target` take the same filters.
struct PullRequestTrigger {
  std::vector<std::string> branches, branches_ignore, types, paths, paths_ignore;
};

struct DispatchInput {
  std::string name, description, type = "string";
  bool required = false;
  std::optional<nlohmann::json> default_value;
  std::vector<std::string> options;
};

struct WorkflowDispatchTrigger {
  std::vector<DispatchInput> inputs;
};

// One `- cron: '...'` entry of `schedule:`.
struct CronEntry {
  std::string cron;  // as written, trimmed: what github.event.schedule holds
  SourceLocation location;
  CronSchedule schedule;
};

struct ScheduleTrigger {
  std::vector<CronEntry> crons;  // file order, at least one
};

struct Triggers {
  std::optional<PushTrigger> push;
  std::optional<PullRequestTrigger> pull_request;
  // Runs the BASE branch's workflow with secrets, for pull requests (forks too).
  std::optional<PullRequestTrigger> pull_request_target;
  std::optional<WorkflowDispatchTrigger> workflow_dispatch;
  std::optional<ScheduleTrigger> schedule;
  // Only called by other workflows: never starts a run on its own.
  std::optional<WorkflowCallTrigger> workflow_call;
};

struct Concurrency {
  std::string group;
  // "true", "false" or an expression (`${{ github.event_name == 'pull_request' }}`),
  // evaluated with the group's contexts when the run starts.
  std::string cancel_in_progress = "false";
};

struct Workflow {
  std::string file;  // path as given to the loader
  std::string name;  // empty: the file name
  std::string run_name;  // `run-name` as written (may hold expressions); empty: not given
  Triggers on;
  StringMap env;
  RunDefaults defaults;
  std::optional<Concurrency> concurrency;
  std::vector<Job> jobs;  // file order

  const Job* find_job(const std::string& id) const;
};

// Whether a `runs-on` label asks for a machine sandci does not have: macOS or
// Windows runners (GitHub's macos-latest, windows-2022, self-hosted "windows"...).
bool names_another_os(std::string_view runs_on_label);

}  // namespace sandci::scheduler
