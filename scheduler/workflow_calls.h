#pragma once
// Reusable workflows: a job with `uses: ./.github/workflows/x.yml` (or
// `owner/repo/.github/workflows/x.yml@ref`) runs the jobs of that workflow.
// expand_calls inlines them into the calling workflow so that the plan and the
// executor see ordinary jobs:
//   - each called job becomes `caller/<id>` (with a caller matrix:
//     `caller/<k>/<id>`, one copy per combination), named "caller / <name>";
//   - needs inside the called workflow are kept, its roots need what the caller
//     needs, and the caller job itself stays as the point its dependents wait for:
//     it needs the called jobs, runs nothing, and its outputs are the called
//     workflow's outputs (Job::call, evaluated by the executor);
//   - each called job carries its CallFrame (the caller's `with`, `secrets`, `if`
//     and matrix, evaluated at run time) and its workflow's own env and
//     defaults.run (Job::scope).
// Pure: the called files' text comes through a WorkflowReader.
#include <expected>
#include <functional>
#include <optional>
#include <string>

#include "scheduler/diagnostic.h"
#include "scheduler/uses_ref.h"
#include "scheduler/workflow.h"
#include "scheduler/workflow_loader.h"

namespace sandci::scheduler {

// The text of the workflow file a job's `uses:` names, or why it cannot be had.
using WorkflowReader = std::function<std::expected<std::string, std::string>(const UsesRef&)>;

struct CallOptions {
  WorkflowReader read;
  // Remote calls (owner/repo/...@ref) are not read: each gets a note saying it
  // was not checked, and its caller stays unexpanded (for `sandci validate`).
  bool skip_remote = false;
  // Local called files are named `root / path` in messages (the repository root).
  std::string root;
  LoaderLimits limits;
};

// GitHub allows a chain of at most four workflows (the top one and three levels
// of calls below it).
inline constexpr std::size_t kMaxCallDepth = 4;

// Whether any job of `workflow` calls a reusable workflow.
bool has_calls(const Workflow& workflow);

// The workflow with every call expanded (recursively), or nullopt when a called
// file cannot be read, does not parse, does not declare `on: workflow_call`, is
// given unknown inputs or secrets or lacks required ones, or calls deeper than
// kMaxCallDepth or in a cycle. Errors and notes (also those of the called
// files, at their own file:line:col) are appended to `out`.
std::optional<Workflow> expand_calls(const Workflow& workflow, const CallOptions& options, Diagnostics& out);

// The file name used in messages for a called workflow: `root / path` for local
// ones, "owner/repo/path@ref" for remote ones.
std::string called_file_name(const UsesRef& ref, const std::string& root);

}  // namespace sandci::scheduler
