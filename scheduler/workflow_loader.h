#pragma once
// Finds, reads, parses and validates workflow files. Validation reports every
// error at once, each at file:line:col; a workflow is returned only when its file
// has no errors. Keys and events GitHub knows but sandci ignores are accepted,
// each with a note (see workflow_keys.h). Never throws on user input: hostile files (too large, alias
// bombs, deep nesting) end in a diagnostic with bounded time and memory.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/diagnostic.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

struct LoaderLimits {
  std::size_t max_file_bytes = 1 << 20;  // 1 MiB
  int max_depth = 64;                    // nesting of mappings and sequences
  // Nodes as written (scalars, mappings, lists, aliases): bounds yaml-cpp's memory,
  // which is a few hundred bytes per node.
  std::size_t max_nodes = 100'000;
  // Nodes visited while walking the document, aliases expanded: bounds the work
  // an alias bomb ("billion laughs") can cause, since each alias is walked again.
  std::size_t max_expanded_nodes = 1'000'000;
};

// Workflow folders, relative to a repository root, in the order they are tried;
// the first one that exists is used.
const std::vector<std::string>& workflow_directories();

struct LoadResult {
  std::vector<std::string> files;  // every workflow file read, sorted by name
  std::string directory;           // the workflow folder used; empty when none exists
  std::vector<Workflow> workflows;  // only files without errors, in file order
  // Every error and note, sorted by file, line, column. Notes name what a workflow
  // says that sandci accepts but ignores (a key, an event it does not run).
  Diagnostics diagnostics;

  // No errors; notes alone leave a load ok.
  bool ok() const { return error_count(diagnostics) == 0; }
};

// Loads every *.yml / *.yaml of the first existing workflow folder under `root`.
// File names in results are `root / relative path`, lexically normalised.
// No workflow folder (or an empty one) is not an error: `files` is then empty.
LoadResult load_workflows(const std::filesystem::path& root, const LoaderLimits& limits = {});

// Loads one workflow file; the file name is kept as given.
LoadResult load_workflow_file(const std::filesystem::path& file, const LoaderLimits& limits = {});

// Parses and validates workflow text; `file` is only used in locations.
// Returns the workflow (when there are no errors) and appends its errors and notes
// to `diagnostics`.
std::optional<Workflow> parse_workflow(std::string_view text, const std::string& file,
                                       Diagnostics& diagnostics, const LoaderLimits& limits = {});

}  // namespace sandci::scheduler
