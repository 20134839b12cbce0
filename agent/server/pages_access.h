#pragma once
// Who may see which run pages, and the CSRF tokens of the pages' admin forms.
//
// A repository's pages are public (`pages: public`) or private (the default): a
// private repository's runs, jobs, logs and their JSON are shown only to a request
// that carries a token allowed to see them: the admin token, a global viewer token
// or one of the repository's own viewer tokens. The token comes as
// `Authorization: Bearer <token>` or as the session cookie the login page sets.
// The cookie is "<issued>.<mac>": the login's time (Unix seconds) and an HMAC, under
// the agent's session key, of that time and of the token's own HMAC; never the
// token itself, so it cannot be turned back into the token, and its time cannot be
// changed without the key. It is accepted for `login_hours` (default a week) after
// the login, the browser is told the same (Max-Age), and after that the viewer
// logs in again. The key is kept in <state_dir>/session.key
// (agent/server/session_key.h): a cookie outlives restarts, stops working when its
// token is removed from the config (no configured token matches it any more), and
// every cookie stops working when the key file is deleted and the agent restarted.
// Every comparison is constant-time.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/http/http_types.h"

namespace sandci::agent::server {

// What the request's token allows. A request without a known token sees only
// public repositories.
struct Viewer {
  bool admin = false;            // the admin token: every page and the admin forms
  bool every_repository = false; // the admin token or a global viewer token
  // The configuration the token was checked against (SIGHUP may replace the agent's);
  // `repositories` point into it.
  std::shared_ptr<const config::AgentConfig> config;
  // Repositories whose own viewer token was given (forge and name as configured).
  std::vector<const config::RepositoryConfig*> repositories;
  // The HMAC that identifies the token (what its CSRF tokens derive from); empty
  // without a known token, or with a cookie that is no longer valid.
  std::string session;
};

class PageAccess {
 public:
  static constexpr std::string_view kCookie = "sandci_session";

  // Makes a fresh random key (OpenSSL's RAND_bytes): cookies last as long as this
  // object (tests, routes without a state folder). `config` must outlive this; each
  // check reads the configuration of the moment (tokens change on SIGHUP).
  explicit PageAccess(config::ConfigRef config);
  // With a given key: the agent's, from <state_dir>/session.key, so that cookies
  // outlive restarts.
  PageAccess(config::ConfigRef config, std::string key);
  // With a clock (Unix seconds), for tests of a login's age.
  PageAccess(config::ConfigRef config, std::string key, std::function<std::int64_t()> now_s);

  // The viewer a request is: its bearer token if it has an Authorization header,
  // else its session cookie. A wrong token or cookie is a viewer of public pages.
  Viewer viewer_of(const http::HttpRequest& request) const;

  // True when `viewer` may see runs of `repository` on `forge` (forge and name as the
  // store keeps them). A repository no longer configured counts as private.
  bool may_view(const Viewer& viewer, std::string_view forge, std::string_view repository) const;

  // The cookie value of a login with `token` now, nullopt when the token is none the
  // config knows.
  std::optional<std::string> session_for(std::string_view token) const;

  // The Set-Cookie header value that logs in with `session` (HttpOnly, SameSite=Strict,
  // Path=/, Max-Age login_hours, Secure when the agent serves TLS or its public URL is
  // https), or, for an empty session, one that logs out.
  std::string set_cookie(std::string_view session) const;

  // The CSRF token of `viewer`'s admin forms: an HMAC of its session; empty without one.
  std::string csrf_token(const Viewer& viewer) const;
  // True when `given` is viewer's CSRF token (constant-time) and the request's Origin,
  // or else its Referer, when present, names this agent (its Host or its public URL).
  bool csrf_ok(const Viewer& viewer, const http::HttpRequest& request, std::string_view given) const;

 private:
  std::string hmac_hex(std::string_view purpose, std::string_view data) const;
  // The cookie's MAC of a login at `issued` by the token whose HMAC is `token_session`.
  std::string login_mac(std::string_view issued, std::string_view token_session) const;
  bool same_origin(const http::HttpRequest& request) const;

  config::ConfigRef config_;
  std::string key_;
  std::function<std::int64_t()> now_s_;
};

// The value of cookie `name` in the request's Cookie headers; nullopt when absent.
std::optional<std::string> cookie_value(const http::HttpRequest& request, std::string_view name);

}  // namespace sandci::agent::server
