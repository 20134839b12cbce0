#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "agent/cli/cli.h"
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

int validate(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path target{path};
  if (!std::filesystem::exists(target, ec)) {
    std::cerr << path << ": error: no such file or folder\n";
    return kExitUsage;
  }
  const bool folder = std::filesystem::is_directory(target, ec);
  auto result = folder ? scheduler::load_workflows(target) : scheduler::load_workflow_file(target);
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
  std::cout << "ok: " << n << (n == 1 ? " workflow, " : " workflows, ") << jobs
            << (jobs == 1 ? " job" : " jobs") << "\n";
  return kExitOk;
}

}  // namespace

void add_validate_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("validate", "Check workflow files; print every error as file:line:col");
  auto path = std::make_shared<std::string>(".");
  cmd->add_option("path", *path, "A repository folder or one workflow file")->capture_default_str();
  cmd->callback([&action, path] {
    action = [path] { return validate(*path); };
  });
}

}  // namespace sandci::agent
