#include <CLI/CLI.hpp>

#include "agent/cli.h"

namespace sandci::agent {

void add_validate_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("validate", "Check workflow files; print every error as file:line:col");
  auto path = std::make_shared<std::string>(".");
  cmd->add_option("path", *path, "A repository folder or one workflow file")->capture_default_str();
  cmd->callback([&action, path] {
    action = [path] { return kExitUsage; };  // filled in with the loader
  });
}

}  // namespace sandci::agent
