#pragma once
// The admin token check every admin route shares (queue by hand, cancel, re-run), and
// who an admin action is recorded as.
#include <optional>
#include <string>
#include <string_view>

#include "agent/config/agent_config.h"
#include "agent/http/http_types.h"

namespace sandci::agent::server {

// True when the two secrets are equal. Compares their SHA-256 digests in constant
// time, so neither the content nor the length of the expected one leaks through timing.
bool same_secret(std::string_view given, std::string_view expected);

// nullopt when `request` carries `Authorization: Bearer <admin_token>`; otherwise the
// answer to send: 403 when no admin_token is configured (`refused_what` says what
// cannot be done then, e.g. "runs cannot be queued by hand"), 401 for a missing or
// wrong token. The answers never echo the token given.
std::optional<http::HttpResponse> refuse_unless_admin(const config::AgentConfig& config,
                                                      const http::HttpRequest& request,
                                                      std::string_view refused_what);

// The name an admin action is recorded under: the X-Sandci-Actor header (spaces at
// either end dropped, bytes outside printable ASCII replaced by '?', at most 64
// characters), or "admin" when it is absent or empty. Only trusted after the token
// check: it is a label, not an identity.
std::string admin_actor(const http::HttpRequest& request);

}  // namespace sandci::agent::server
