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

struct PushTrigger {
  std::vector<std::string> branches, branches_ignore, tags, tags_ignore, paths, paths_ignore;
};

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

struct Triggers {
  std::optional<PushTrigger> push;
  std::optional<PullRequestTrigger> pull_request;
  std::optional<WorkflowDispatchTrigger> workflow_dispatch;
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
