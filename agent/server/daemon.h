#pragma once
// `sandci serve`: the long-running agent. Start-up: the log, the run store, the
// sandbox backend (which reaps sandboxes a previous life left), recovery of runs
// a crash interrupted (re-queued or marked error, as configured), then the status
// sender, the queue worker and the HTTP server; READY to systemd once all of that
// stands. SIGTERM or SIGINT: stop accepting, let running jobs finish within the
// grace period, cancel the rest, send what the outbox can, exit 0.
#include <string>

#include "agent/config/agent_config.h"

namespace sandci::agent::server {

// Runs the agent until a signal stops it; returns the process exit code (0 after
// a clean shutdown, 1 when it cannot start). Errors go to the log (stderr).
int serve(const config::AgentConfig& config);

}  // namespace sandci::agent::server
