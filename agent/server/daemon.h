#pragma once
// `sandci serve`: the long-running agent. Start-up: the log, the run store, the
// sandbox backend (which reaps sandboxes a previous life left), recovery of runs
// a crash interrupted (re-queued or marked error, as configured), then the status
// sender, the queue worker and the HTTP server; READY to systemd once all of that
// stands. SIGTERM or SIGINT: stop accepting, let running jobs finish within the
// grace period, cancel the rest, send what the outbox can, exit 0.
// SIGHUP: re-reads the configuration file (see reload in daemon.cc and
// config::plan_reload): repositories and secrets change for the work that starts
// after it, running jobs keep what they started with; a file with errors changes
// nothing (the errors are logged at file:line:col).
// Socket activation: when systemd passes a listening socket ($LISTEN_FDS), the agent
// serves on it instead of binding `listen:`.
#include <filesystem>
#include <string>

#include "agent/config/agent_config.h"

namespace sandci::agent::server {

// Runs the agent until a signal stops it; returns the process exit code (0 after
// a clean shutdown, 1 when it cannot start). Errors go to the log (stderr).
// `config_file` is what SIGHUP re-reads (empty: SIGHUP is logged and ignored).
int serve(const config::AgentConfig& config, const std::filesystem::path& config_file = {});

}  // namespace sandci::agent::server
