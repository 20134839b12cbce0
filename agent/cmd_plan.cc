#include <CLI/CLI.hpp>

#include "agent/cli.h"

namespace sandci::agent {

void add_plan_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("plan", "Show which workflows an event triggers and their job DAG");
  auto path = std::make_shared<std::string>(".");
  cmd->add_option("path", *path, "A repository folder or one workflow file")->capture_default_str();
  cmd->callback([&action, path] {
    action = [path] { return kExitUsage; };  // filled in with the planner
  });
}

}  // namespace sandci::agent
