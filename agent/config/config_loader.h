#pragma once
// Loads and validates the agent's configuration file with the workflow loader's
// standards: every error at file:line:col, unknown keys with a did-you-mean, all
// errors reported at once. Never throws on user input.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "agent/config/agent_config.h"
#include "agent/config/secret.h"
#include "scheduler/diagnostic.h"

namespace sandci::agent::config {

struct LoadedConfig {
  std::optional<AgentConfig> config;  // set only when there are no diagnostics
  scheduler::Diagnostics diagnostics;  // every error, sorted by line and column

  bool ok() const { return diagnostics.empty(); }
};

// Configuration files are small; a larger one is a wrong path.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;

// Reads, parses and validates `file`. Relative paths in it (secret files, TLS files,
// CA bundle, known_hosts) are relative to the file's folder. Secrets are read here,
// from files or from `env.credentials_directory`; `env` also gives the defaults of
// state_dir ($STATE_DIRECTORY, else /var/lib/sandci) and capacity (cores).
LoadedConfig load_agent_config(const std::filesystem::path& file, const Environment& env);

// The same for text already read: `file` names it in diagnostics and `base_dir`
// anchors relative paths.
LoadedConfig parse_agent_config(std::string_view text, const std::string& file,
                                const std::filesystem::path& base_dir, const Environment& env);

}  // namespace sandci::agent::config
