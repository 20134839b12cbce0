#pragma once
// The workflow model: what a workflow file says, after loading and validation.
// String fields that may hold `${{ }}` expressions are kept as written; they are
// evaluated at run time by the executor or the job runner.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/cron.h"
#include "scheduler/diagnostic.h"

namespace sandci::scheduler {

// Insertion-ordered string map: env and outputs keep the order of the file.
using StringMap = std::vector<std::pair<std::string, std::string>>;

struct Step {
  SourceLocation location;
  std::string id;    // empty when the file gives none
  std::string name;  // as written (may hold expressions); empty when not given
  std::optional<std::string> run;
  std::string uses;  // "actions/checkout@v4"; empty for run steps
  StringMap with;
  std::string shell;              // empty: default shell
  std::string working_directory;  // empty: job/workflow default
  StringMap env;
  std::string if_condition;  // empty: success()
  std::string continue_on_error = "false";  // "true", "false" or an expression
  std::optional<double> timeout_minutes;
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
  bool empty() const { return dimensions.empty() && include.empty(); }
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

struct Job {
  SourceLocation location;
  std::string id;
  std::string name;  // as written; empty: the id
  std::vector<std::string> needs;
  std::string if_condition;  // empty: success()
  std::vector<std::string> runs_on;
  std::optional<Container> container;
  StringMap env;
  double timeout_minutes = 360;
  std::string continue_on_error = "false";  // "true", "false" or an expression
  std::optional<Strategy> strategy;
  StringMap outputs;
  RunDefaults defaults;
  std::vector<Step> steps;
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

// `workflow_call` (a reusable workflow's interface), as declared; the loader checks
// the shape, the caller's side (`jobs.<id>.uses`) checks the values passed in.
struct WorkflowCallInput {
  SourceLocation location;  // of the input's name
  std::string name;
  std::string type;  // "string", "boolean" or "number" (required on GitHub)
  bool required = false;
  std::optional<nlohmann::json> default_value;  // as written; may be a `${{ }}` string
  std::string description;
};

struct WorkflowCallSecret {
  SourceLocation location;
  std::string name;
  bool required = false;
  std::string description;
};

struct WorkflowCallOutput {
  SourceLocation location;
  std::string name;
  std::string value;  // as written, e.g. "${{ jobs.build.outputs.version }}"
  std::string description;
};

struct WorkflowCallTrigger {
  std::vector<WorkflowCallInput> inputs;    // file order
  std::vector<WorkflowCallSecret> secrets;  // file order
  std::vector<WorkflowCallOutput> outputs;  // file order
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
  bool cancel_in_progress = false;
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
