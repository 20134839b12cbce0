#include "agent/server/repository_glue.h"

namespace sandci::agent::server {

forge::ForgeKind forge_kind(config::Forge forge) {
  switch (forge) {
    case config::Forge::kGithub: return forge::ForgeKind::github;
    case config::Forge::kGitea: return forge::ForgeKind::gitea;
    case config::Forge::kForgejo: return forge::ForgeKind::forgejo;
    case config::Forge::kGitlab: return forge::ForgeKind::gitlab;
  }
  return forge::ForgeKind::github;
}

config::Forge config_forge(forge::ForgeKind kind) {
  switch (kind) {
    case forge::ForgeKind::github: return config::Forge::kGithub;
    case forge::ForgeKind::gitea: return config::Forge::kGitea;
    case forge::ForgeKind::forgejo: return config::Forge::kForgejo;
    case forge::ForgeKind::gitlab: return config::Forge::kGitlab;
  }
  return config::Forge::kGithub;
}

const config::RepositoryConfig* find_repository(const config::AgentConfig& config, std::string_view forge,
                                                std::string_view name) {
  auto parsed = config::parse_forge(forge);
  if (!parsed) return nullptr;
  if (const auto* repo = config.find_repository(*parsed, name)) return repo;
  // Forgejo is a fork of Gitea and sends Gitea's headers too: a repository
  // configured as one is found when the other calls.
  if (*parsed == config::Forge::kForgejo) return config.find_repository(config::Forge::kGitea, name);
  if (*parsed == config::Forge::kGitea) return config.find_repository(config::Forge::kForgejo, name);
  return nullptr;
}

forge::StatusTarget status_target(const config::RepositoryConfig& repo) {
  forge::StatusTarget target;
  target.forge = forge_kind(repo.forge);
  target.api_url = repo.api_url;
  target.repository = repo.name;
  target.project_id = repo.project_id;
  return target;
}

NameValueList job_secrets(const config::RepositoryConfig& repo) {
  NameValueList secrets;
  for (const auto& secret : repo.secrets) secrets.emplace_back(secret.name, secret.value.reveal());
  return secrets;
}

}  // namespace sandci::agent::server
