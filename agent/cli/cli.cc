#include "agent/cli/cli.h"

#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace sandci::agent {

std::expected<std::string, std::string> read_admin_token(const std::string& file) {
  std::ifstream in(file);
  if (!in) return std::unexpected("cannot read the admin token file " + file);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return std::unexpected("the admin token file " + file + " is empty");
  return token;
}

int run_cli(int argc, char** argv, const std::string& version) {
  CLI::App app{"sandci: a self-hosted CI runner that runs every job in a gVisor sandbox",
               "sandci"};
  app.set_version_flag("--version", "sandci " + version);
  app.require_subcommand(0, 1);
  app.footer("Exit codes: 0 success, 1 a run failed, 2 usage or validation error, 130 cancelled.");

  CommandAction action;
  add_validate_command(app, action);
  add_plan_command(app, action);
  add_image_command(app, action);
  add_run_command(app, action);
  add_serve_command(app, action);
  add_enqueue_command(app, action);
  add_runs_command(app, action);
  add_actions_command(app, action);

  // CLI11 would print the main help for `sandci nonsense --help` and exit 0: an
  // unknown command is an error whatever follows it.
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      known += (known.empty() ? "" : ", ") + sub->get_name();
      found = found || sub->check_name(argv[1]);
    }
    if (!found) {
      std::cerr << "sandci: unknown command '" << argv[1] << "' (commands: " << known
                << "; see sandci --help)\n";
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!action) {
    std::cout << app.help();
    return kExitUsage;
  }
  return action();
}

}  // namespace sandci::agent
