#include "agent/config/live_config.h"

namespace sandci::agent::config {

LiveConfig::LiveConfig(AgentConfig initial) : current_(std::make_shared<const AgentConfig>(std::move(initial))) {}

std::shared_ptr<const AgentConfig> LiveConfig::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void LiveConfig::replace(AgentConfig next) {
  auto fresh = std::make_shared<const AgentConfig>(std::move(next));
  std::lock_guard lock(mutex_);
  current_ = std::move(fresh);
}

ConfigRef::ConfigRef(const AgentConfig& fixed) : fixed_(&fixed) {}

ConfigRef::ConfigRef(const LiveConfig& live) : live_(&live) {}

std::shared_ptr<const AgentConfig> ConfigRef::get() const {
  if (live_) return live_->current();
  // Not owned: the caller of the constructor keeps the configuration alive.
  return std::shared_ptr<const AgentConfig>(std::shared_ptr<const AgentConfig>{}, fixed_);
}

namespace {

bool same_credentials(const git::Credentials& a, const git::Credentials& b) {
  const bool same_https = a.https.has_value() == b.https.has_value() &&
                          (!a.https || (a.https->username == b.https->username && a.https->token == b.https->token));
  const bool same_ssh = a.ssh.has_value() == b.ssh.has_value() &&
                        (!a.ssh || (a.ssh->username == b.ssh->username && a.ssh->private_key == b.ssh->private_key &&
                                    a.ssh->public_key == b.ssh->public_key && a.ssh->passphrase == b.ssh->passphrase));
  return same_https && same_ssh && a.known_hosts == b.known_hosts;
}

bool same_tls(const std::optional<TlsFiles>& a, const std::optional<TlsFiles>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->cert == b->cert && a->key == b->key);
}

// Keeps `running`'s value of one restart-only key when `next` differs, and says so.
template <class T, class Same>
void keep(const char* key, const T& running, T& next, Same same, std::vector<std::string>& needs_restart) {
  if (same(running, next)) return;
  next = running;
  needs_restart.emplace_back(key);
}

template <class T>
void keep(const char* key, const T& running, T& next, std::vector<std::string>& needs_restart) {
  keep(key, running, next, [](const T& a, const T& b) { return a == b; }, needs_restart);
}

}  // namespace

ReloadPlan plan_reload(const AgentConfig& running, AgentConfig next) {
  std::vector<std::string> restart;
  keep("listen", running.listen, next.listen,
       [](const ListenAddress& a, const ListenAddress& b) { return a.host == b.host && a.port == b.port; }, restart);
  keep("tls", running.tls, next.tls, same_tls, restart);
  keep("state_dir", running.state_dir, next.state_dir, restart);
  keep("capacity", running.capacity, next.capacity, restart);
  keep("limits.webhook_body_mib", running.limits.webhook_body_mib, next.limits.webhook_body_mib, restart);
  keep("limits.cache_mib", running.limits.cache_mib, next.limits.cache_mib, restart);
  keep("limits.state_min_free_mib", running.limits.state_min_free_mib, next.limits.state_min_free_mib, restart);
  keep("status.ca_file", running.status.ca_file, next.status.ca_file, restart);
  keep("actions", running.actions, next.actions,
       [](const ActionsConfig& a, const ActionsConfig& b) {
         return a.source == b.source && same_credentials(a.clone, b.clone);
       },
       restart);
  // The backend is opened once at start-up (a runsc state folder or an engine connection).
  // sandbox.warm is read by each run as it starts (its workflows' pools): taken
  // live, even when the rest of `sandbox` waits for a restart.
  const std::size_t warm = next.sandbox.warm;
  keep("sandbox", running.sandbox, next.sandbox,
       [](const SandboxConfig& a, const SandboxConfig& b) {
         return a.backend == b.backend && a.docker_socket == b.docker_socket &&
                a.docker_runtime == b.docker_runtime && a.docker_egress_runtime == b.docker_egress_runtime &&
                a.docker_allow_other_runtime == b.docker_allow_other_runtime && a.docker_pull == b.docker_pull;
       },
       restart);
  next.sandbox.warm = warm;
  keep("retention", running.retention, next.retention,
       [](const RetentionConfig& a, const RetentionConfig& b) {
         return a.max_age_days == b.max_age_days && a.disk_budget_mib == b.disk_budget_mib &&
                a.keep_rows == b.keep_rows && a.interval_minutes == b.interval_minutes &&
                a.actions_days == b.actions_days;
       },
       restart);
  return ReloadPlan{std::move(next), std::move(restart)};
}

}  // namespace sandci::agent::config
