#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "agent/cli/cli.h"
#include "agent/runner/job_image.h"
#include "agent/runner/run_engine.h"
#include "scheduler/workflow_calls.h"
#include "scheduler/workflow_loader.h"

namespace sandci::agent {
namespace {

std::string searched_folders() {
  std::string list;
  for (const auto& dir : scheduler::workflow_directories()) {
    if (!list.empty()) list += ", ";
    list += dir + "/";
  }
  return list;
}

// The repository a workflow file or folder belongs to: called workflows
// (`uses: ./.github/workflows/x.yml`) are read from there.
std::filesystem::path repository_root(const std::filesystem::path& target, bool folder) {
  if (folder) return target;
  const auto dir = target.parent_path();
  if (dir.filename() == "workflows") return dir.parent_path().parent_path();
  return dir;
}

// Reads and checks the workflows each workflow calls; remote ones get a note (not fetched here).
void check_calls(scheduler::LoadResult& result, const std::filesystem::path& root) {
  scheduler::CallOptions options;
  options.read = workflow_reader(root, nullptr);
  options.root = root.lexically_normal().string();
  options.skip_remote = true;
  scheduler::Diagnostics found;
  std::vector<scheduler::Workflow> kept;
  for (auto& workflow : result.workflows)
    if (scheduler::expand_calls(workflow, options, found)) kept.push_back(std::move(workflow));
  result.workflows = std::move(kept);
  // A called file is usually a workflow of the folder too: report its errors once.
  for (auto& d : found)
    if (std::none_of(result.diagnostics.begin(), result.diagnostics.end(),
                     [&](const scheduler::Diagnostic& seen) { return seen.to_string() == d.to_string(); }))
      result.diagnostics.push_back(std::move(d));
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(), [](const auto& a, const auto& b) {
    return std::tie(a.location.file, a.location.line, a.location.column) <
           std::tie(b.location.file, b.location.line, b.location.column);
  });
}

// A note per job whose `runs-on` names another CPU architecture than this host's
// (ubuntu-24.04-arm on an x86_64 agent): at run time it is skipped. The label map
// is the agent's, not known here, so the note says how to run it anyway.
void note_foreign_architectures(scheduler::LoadResult& result) {
  const std::string& host = host_architecture();
  for (const auto& workflow : result.workflows)
    for (const auto& job : workflow.jobs)
      for (const auto& label : job.runs_on)
        if (names_foreign_architecture(label, {}, host))
          result.diagnostics.push_back(
              {job.location,
               "job '" + job.id + "': runs-on '" + label + "': " + no_runner_reason(label, host) +
                   "; the job is skipped unless the label map (labels: in the config, sandci run --label) "
                   "names an image for '" + label + "'",
               scheduler::Severity::note});
}

// Notes (keys and events sandci accepts but ignores) are printed and do not fail
// validation, unless `strict` turns them into errors.
int validate(const std::string& path, bool strict) {
  std::error_code ec;
  const std::filesystem::path target{path};
  if (!std::filesystem::exists(target, ec)) {
    std::cerr << path << ": error: no such file or folder\n";
    return kExitUsage;
  }
  const bool folder = std::filesystem::is_directory(target, ec);
  auto result = folder ? scheduler::load_workflows(target) : scheduler::load_workflow_file(target);
  note_foreign_architectures(result);  // sorted in with the others by check_calls
  check_calls(result, repository_root(target, folder));
  if (strict)
    for (auto& diagnostic : result.diagnostics) diagnostic.severity = scheduler::Severity::error;
  for (const auto& diagnostic : result.diagnostics) std::cerr << diagnostic.to_string() << "\n";
  if (result.files.empty()) {
    std::cerr << path << ": error: no workflow files (*.yml, *.yaml) found; searched "
              << searched_folders() << "\n";
    return kExitUsage;
  }
  if (!result.ok()) return kExitUsage;
  std::size_t jobs = 0;
  for (const auto& workflow : result.workflows) jobs += workflow.jobs.size();
  const std::size_t n = result.workflows.size();
  const std::size_t notes = result.diagnostics.size();  // all notes: there are no errors
  std::cout << "ok: " << n << (n == 1 ? " workflow, " : " workflows, ") << jobs
            << (jobs == 1 ? " job" : " jobs");
  if (notes > 0) std::cout << ", " << notes << (notes == 1 ? " note" : " notes");
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

void add_validate_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("validate", "Check workflow files; print every error as file:line:col");
  auto path = std::make_shared<std::string>(".");
  auto strict = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "A repository folder or one workflow file")->capture_default_str();
  cmd->add_flag("--strict", *strict,
                "Treat notes (keys and events sandci ignores) as errors");
  cmd->callback([&action, path, strict] {
    action = [path, strict] { return validate(*path, *strict); };
  });
}

}  // namespace sandci::agent
