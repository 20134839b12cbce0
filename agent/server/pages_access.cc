#include "agent/server/pages_access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <chrono>
#include <stdexcept>

namespace sandci::agent::server {
namespace {

constexpr std::size_t kKeyBytes = 32;

std::string random_key() {
  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for the session key");
  return key;
}

bool same_text(std::string_view a, std::string_view b) {
  // The lengths of HMACs are public; their contents are compared in constant time.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// "host[:port]" of "scheme://host[:port]/...", lower-cased; empty when it is none.
std::string authority_of(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  url.remove_prefix(scheme + 3);
  std::string out(url.substr(0, url.find_first_of("/?#")));
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// A login's time may be this far ahead of the agent's clock (the clock was set back
// since): the agent issued it, so more means the cookie is not its own.
constexpr std::int64_t kClockSkewS = 300;

std::int64_t system_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "<issued>.<mac>" as session_for makes it: up to 12 digits, a dot, 64 hex digits.
struct Login {
  std::string issued, mac;
};
std::optional<Login> parse_login(std::string_view cookie) {
  const auto dot = cookie.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 12 || cookie.size() - dot - 1 != 64) return std::nullopt;
  for (char c : cookie.substr(0, dot))
    if (c < '0' || c > '9') return std::nullopt;
  for (char c : cookie.substr(dot + 1))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  return Login{std::string(cookie.substr(0, dot)), std::string(cookie.substr(dot + 1))};
}

std::string lower(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

}  // namespace

std::optional<std::string> cookie_value(const http::HttpRequest& request, std::string_view name) {
  for (const auto& header : request.headers.get_all("Cookie")) {
    std::string_view rest = header;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

PageAccess::PageAccess(config::ConfigRef config) : PageAccess(config, random_key()) {}

PageAccess::PageAccess(config::ConfigRef config, std::string key)
    : PageAccess(config, std::move(key), system_now_s) {}

PageAccess::PageAccess(config::ConfigRef config, std::string key, std::function<std::int64_t()> now_s)
    : config_(config), key_(std::move(key)), now_s_(std::move(now_s)) {}

std::string PageAccess::login_mac(std::string_view issued, std::string_view token_session) const {
  return hmac_hex("login", std::string(issued) + "." + std::string(token_session));
}

std::string PageAccess::hmac_hex(std::string_view purpose, std::string_view data) const {
  std::string message(purpose);
  message += '\0';
  message += data;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Viewer PageAccess::viewer_of(const http::HttpRequest& request) const {
  Viewer viewer;
  viewer.config = config_.get();
  const config::AgentConfig& config = *viewer.config;
  // How a configured token (its HMAC) is recognised: as the bearer token, or as the
  // token a still valid login cookie was made for.
  std::function<bool(const std::string&)> matches;
  std::string given;
  std::optional<Login> login;
  const std::string auth = request.headers.get("Authorization").value_or("");
  constexpr std::string_view bearer = "Bearer ";
  if (auth.rfind(bearer, 0) == 0) {
    given = hmac_hex("session", std::string_view(auth).substr(bearer.size()));
    matches = [&given](const std::string& token_session) { return same_text(given, token_session); };
  } else if (auto cookie = cookie_value(request, kCookie); cookie && (login = parse_login(*cookie))) {
    const std::int64_t age = now_s_() - std::stoll(login->issued);
    if (age < -kClockSkewS || age >= static_cast<std::int64_t>(config.login_hours) * 3600) return viewer;
    matches = [this, &login](const std::string& token_session) {
      return same_text(login->mac, login_mac(login->issued, token_session));
    };
  } else {
    return viewer;
  }
  // Every configured token is compared, whichever matches, so the time taken says
  // nothing about which one did.
  bool known = false;
  std::string matched;
  auto is_given = [&](const config::Secret& token) {
    std::string token_session = hmac_hex("session", token.reveal());
    if (!matches(token_session)) return false;
    matched = std::move(token_session);
    return true;
  };
  if (config.admin_token && is_given(*config.admin_token)) viewer.admin = viewer.every_repository = known = true;
  for (const auto& token : config.viewer_tokens)
    if (is_given(token)) viewer.every_repository = known = true;
  for (const auto& repository : config.repositories)
    for (const auto& token : repository.viewer_tokens)
      if (is_given(token)) {
        viewer.repositories.push_back(&repository);
        known = true;
      }
  if (known) viewer.session = std::move(matched);
  return viewer;
}

bool PageAccess::may_view(const Viewer& viewer, std::string_view forge, std::string_view repository) const {
  if (viewer.every_repository) return true;
  auto kind = config::parse_forge(forge);
  // The snapshot the viewer's tokens were checked against, so its pointers compare.
  const auto config = viewer.config ? viewer.config : config_.get();
  const config::RepositoryConfig* configured = kind ? config->find_repository(*kind, repository) : nullptr;
  if (!configured) return false;
  if (configured->pages_public) return true;
  for (const auto* allowed : viewer.repositories)
    if (allowed == configured) return true;
  return false;
}

std::optional<std::string> PageAccess::session_for(std::string_view token) const {
  http::HttpRequest probe;
  probe.headers.set("Authorization", "Bearer " + std::string(token));
  Viewer viewer = viewer_of(probe);
  if (viewer.session.empty()) return std::nullopt;
  const std::string issued = std::to_string(now_s_());
  return issued + "." + login_mac(issued, viewer.session);
}

std::string PageAccess::set_cookie(std::string_view session) const {
  const auto config = config_.get();
  const bool secure = config->tls.has_value() || config->public_url.rfind("https://", 0) == 0;
  std::string cookie = std::string(kCookie) + "=" + std::string(session) + "; Path=/; HttpOnly; SameSite=Strict";
  cookie += "; Max-Age=" + (session.empty() ? std::string("0") : std::to_string(config->login_hours * 3600ULL));
  if (secure) cookie += "; Secure";
  return cookie;
}

std::string PageAccess::csrf_token(const Viewer& viewer) const {
  return viewer.session.empty() ? "" : hmac_hex("csrf", viewer.session);
}

bool PageAccess::same_origin(const http::HttpRequest& request) const {
  auto origin = request.headers.get("Origin");
  if (!origin) origin = request.headers.get("Referer");
  if (!origin) return true;
  const std::string given = authority_of(*origin);
  if (given.empty()) return false;  // "null" (a sandboxed frame, a file) or garbage
  const std::string host = lower(request.headers.get("Host").value_or(""));
  return given == host || given == authority_of(config_.get()->public_url);
}

bool PageAccess::csrf_ok(const Viewer& viewer, const http::HttpRequest& request, std::string_view given) const {
  const std::string expected = csrf_token(viewer);
  if (expected.empty()) return false;
  const bool token_ok = same_text(given, expected);
  return token_ok && same_origin(request);
}

}  // namespace sandci::agent::server
