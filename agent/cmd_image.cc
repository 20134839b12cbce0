#include <CLI/CLI.hpp>

#include "agent/cli.h"

namespace sandci::agent {

void add_image_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("image", "Manage the job images (root filesystems) in the image store");
  cmd->require_subcommand(1);
  (void)action;  // the subcommands arrive with the image store
}

}  // namespace sandci::agent
