#pragma once
// The configuration a running agent works with, replaceable whole while it runs
// (`sandci serve` re-reads its file on SIGHUP). Readers take a snapshot for one
// piece of work (a webhook, a run, a status post) and keep using it: a reload never
// changes a configuration under someone's feet, and what a running job was given
// (its repository's secrets and clone credentials) stays valid until it ends.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/config/agent_config.h"

namespace sandci::agent::config {

class LiveConfig {
 public:
  explicit LiveConfig(AgentConfig initial);

  // The configuration now; the snapshot stays valid (and unchanged) while held.
  std::shared_ptr<const AgentConfig> current() const;
  // Later calls to current() return `next`; snapshots already taken are kept.
  void replace(AgentConfig next);

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const AgentConfig> current_;
};

// What the agent's parts hold: either a fixed configuration (tests, one-shot tools;
// the caller keeps it alive, as with a reference) or a LiveConfig. Cheap to copy.
class ConfigRef {
 public:
  ConfigRef(const AgentConfig& fixed);  // NOLINT(google-explicit-constructor): stands in for a reference
  ConfigRef(const LiveConfig& live);    // NOLINT(google-explicit-constructor)

  // A snapshot (see LiveConfig::current); for a fixed configuration, that one.
  std::shared_ptr<const AgentConfig> get() const;

 private:
  const AgentConfig* fixed_ = nullptr;
  const LiveConfig* live_ = nullptr;
};

// A reload's outcome: the configuration to run with, and the keys whose new value
// was not taken because they only take effect at the next start.
struct ReloadPlan {
  AgentConfig config;                      // `next`, with the restart-only keys of `running`
  std::vector<std::string> needs_restart;  // e.g. "listen", "state_dir", in file order
};

// Merges a freshly loaded configuration into the running one. Taken live:
// repositories (added, removed, their secrets, tokens, webhook secrets, clone
// credentials, events, egress grants: a run keeps the grant it started with),
// egress_hosts_file, egress_netns, public_url, default_image, labels, limits.job_memory_mib,
// limits.job_log_mib, log_level, admin_token, shutdown_grace_seconds,
// interrupted_runs, sandbox.warm (for runs that start after it). Kept from
// `running` (the listener, the folders, what was built from them at start-up):
// listen, tls, state_dir, capacity, limits.webhook_body_mib, limits.cache_mib,
// limits.state_min_free_mib, status.ca_file, actions, sandbox (but warm), retention.
ReloadPlan plan_reload(const AgentConfig& running, AgentConfig next);

}  // namespace sandci::agent::config
