// `sandci serve`: the agent (signed webhooks in, sandboxed runs, commit statuses
// out), and `sandci serve --check-config` to validate its configuration.
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "agent/cli/cli.h"
#include "agent/config/config_loader.h"
#include "agent/server/daemon.h"

namespace sandci::agent {
namespace {

int serve_command(const std::string& file, bool check_only) {
  auto loaded = config::load_agent_config(file, config::Environment::from_process());
  for (const auto& diagnostic : loaded.diagnostics) std::cerr << diagnostic.to_string() << "\n";
  if (!loaded.ok()) return kExitUsage;
  if (check_only) {
    const auto& config = *loaded.config;
    std::cout << "ok: " << file << ": listen " << config.listen.to_string() << ", "
              << config.repositories.size() << (config.repositories.size() == 1 ? " repository" : " repositories")
              << ", capacity " << config.capacity << ", state " << config.state_dir.string() << "\n";
    return kExitOk;
  }
  // Absolute: SIGHUP re-reads it whatever the folder the agent is in by then.
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(file, ec);
  return server::serve(*loaded.config, ec ? std::filesystem::path(file) : absolute) == 0 ? kExitOk : kExitRunFailed;
}

}  // namespace

void add_serve_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("serve", "Run the agent: webhooks in, sandboxed runs, commit statuses out");
  auto file = std::make_shared<std::string>("/etc/sandci/agent.yml");
  auto check = std::make_shared<bool>(false);
  cmd->add_option("--config", *file, "The agent's configuration file")->capture_default_str();
  cmd->add_flag("--check-config", *check, "Validate the configuration (and read its secrets), then exit");
  cmd->callback([&action, file, check] {
    action = [file, check] { return serve_command(*file, *check); };
  });
}

}  // namespace sandci::agent
