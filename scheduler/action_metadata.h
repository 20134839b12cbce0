#pragma once
// An action's metadata file (`action.yml` / `action.yaml`), read and checked the way
// the workflow loader reads workflows: every error at once, each at file:line:col.
// Two kinds run under sandci: composite actions (their steps run as sub-steps of the
// step that uses them) and JavaScript actions (`using: node16|node20|node24`, run on
// the Node.js runtime the runner supplies). Docker actions are refused: jobs can
// neither pull nor run a container image. `author`, `branding` are read and ignored.
// Pure apart from reading the file in load_action_metadata.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/diagnostic.h"
#include "scheduler/workflow.h"
#include "scheduler/workflow_loader.h"

namespace sandci::scheduler {

struct ActionInput {
  std::string name;  // as declared; `with:` keys match it regardless of case
  std::string description;
  bool required = false;
  std::optional<std::string> default_value;  // as written; may hold `${{ }}`
  std::string deprecation_message;           // empty: not deprecated
};

struct ActionOutput {
  std::string name;
  std::string description;
  std::string value;  // composite only: an expression over steps.* and inputs.*
};

enum class ActionRuns {
  composite,  // `steps:` run as sub-steps
  node,       // `main:` (and `pre:`, `post:`) run by Node.js
};

struct ActionMetadata {
  std::string file;  // as given to the parser, for messages
  std::string name;
  std::string description;
  std::vector<ActionInput> inputs;    // file order
  std::vector<ActionOutput> outputs;  // file order
  ActionRuns runs = ActionRuns::composite;
  std::string using_;  // "composite", "node20", ... as written
  // composite: the steps, each a run step (with `shell:`) or a uses step. Their
  // `working-directory` is as written (empty: the workspace).
  std::vector<Step> steps;
  // node: script paths relative to the action's folder (pre and post may be empty),
  // and the conditions for pre and post (empty: always()).
  std::string main, pre, post;
  std::string pre_if, post_if;

  const ActionInput* find_input(std::string_view name) const;  // regardless of case
};

// The metadata file names, in the order they are looked for.
inline constexpr std::string_view kActionFileNames[] = {"action.yml", "action.yaml"};

// Parses and checks metadata text; `file` is used only in locations. Returns the
// metadata when there is no error; appends errors (and notes) to `diagnostics`.
// Hostile text (alias bombs, deep nesting, huge files) ends in a diagnostic within
// `limits`, as for workflow files.
std::optional<ActionMetadata> parse_action_metadata(std::string_view text, const std::string& file,
                                                    Diagnostics& diagnostics,
                                                    const LoaderLimits& limits = {});

// Reads `dir`/action.yml, else `dir`/action.yaml, and parses it. Locations name the
// file as `display_dir`/action.yml. Neither file there (or a symbolic link: an
// action's files come from outside) is an error naming both.
std::optional<ActionMetadata> load_action_metadata(const std::filesystem::path& dir,
                                                   const std::string& display_dir,
                                                   Diagnostics& diagnostics,
                                                   const LoaderLimits& limits = {});

// The first error of `diagnostics` and how many more there are, for a one-line
// step failure: "a/action.yml:3:5: error: ... (and 2 more errors)".
std::string first_error(const Diagnostics& diagnostics);

}  // namespace sandci::scheduler
