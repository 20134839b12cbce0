#pragma once
// The agent's own log: one event per line on stderr, `key=value` after a level,
// for the journal (which adds the time and the unit). Every line goes through a
// secret masker first, so a token that reaches a message by accident is still
// never written.
#include <memory>
#include <string>

#include "agent/runner/secret_masker.h"

namespace sandci::agent::server {

// Routes spdlog's default logger to stderr through `masker`, at `level`
// (trace, debug, info, warn, error). Returns false for an unknown level.
bool init_agent_log(const std::string& level, std::shared_ptr<const SecretMasker> masker);

}  // namespace sandci::agent::server
