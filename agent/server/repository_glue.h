#pragma once
// Glue between a configured repository (config/) and what the forge part, the
// store and the runner need of it. The config part knows no forge code, so the
// forge names are mapped here, once.
#include <string>
#include <string_view>

#include "agent/config/agent_config.h"
#include "agent/forge/forge_kind.h"
#include "agent/forge/status.h"
#include "agent/runner/command_files.h"

namespace sandci::agent::server {

forge::ForgeKind forge_kind(config::Forge forge);
config::Forge config_forge(forge::ForgeKind kind);

// A repository by forge name ("github", as runs record it) and repository name.
const config::RepositoryConfig* find_repository(const config::AgentConfig& config, std::string_view forge,
                                                std::string_view name);

// Where its commit statuses go.
forge::StatusTarget status_target(const config::RepositoryConfig& repo);

// Its job secrets as the runner takes them.
NameValueList job_secrets(const config::RepositoryConfig& repo);

}  // namespace sandci::agent::server
