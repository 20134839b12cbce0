#pragma once
// The `sandci` command line. Each subcommand lives in its own cmd_<name>.cc and
// registers itself here; run_cli maps results to exit codes.
#include <expected>
#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace sandci::agent {

// Exit codes shared by every subcommand.
enum ExitCode : int {
  kExitOk = 0,
  kExitRunFailed = 1,
  kExitUsage = 2,  // usage or validation error
  kExitCancelled = 130,
};

// A subcommand's action, run after parsing; returns the exit code.
using CommandAction = std::function<int()>;

// Registration hooks, one per subcommand file. Each adds its subcommand to `app`
// and stores into `action` (when that subcommand is chosen) what to run.
void add_validate_command(CLI::App& app, CommandAction& action);
void add_plan_command(CLI::App& app, CommandAction& action);
void add_image_command(CLI::App& app, CommandAction& action);
void add_run_command(CLI::App& app, CommandAction& action);
void add_serve_command(CLI::App& app, CommandAction& action);
void add_enqueue_command(CLI::App& app, CommandAction& action);
void add_runs_command(CLI::App& app, CommandAction& action);
void add_actions_command(CLI::App& app, CommandAction& action);

int run_cli(int argc, char** argv, const std::string& version);

// The agent's admin token from a file (`sandci enqueue`, `sandci runs`): trailing
// line ends and spaces dropped; an unreadable or empty file is an error naming it.
std::expected<std::string, std::string> read_admin_token(const std::string& file);

}  // namespace sandci::agent
