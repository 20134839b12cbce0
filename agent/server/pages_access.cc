#include "agent/server/pages_access.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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

PageAccess::PageAccess(config::ConfigRef config, std::string key) : config_(config), key_(std::move(key)) {}

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
  std::string session;
  const std::string auth = request.headers.get("Authorization").value_or("");
  constexpr std::string_view bearer = "Bearer ";
  if (auth.rfind(bearer, 0) == 0)
    session = hmac_hex("session", std::string_view(auth).substr(bearer.size()));
  else if (auto cookie = cookie_value(request, kCookie))
    session = *cookie;
  Viewer viewer;
  viewer.config = config_.get();
  if (session.empty()) return viewer;
  const config::AgentConfig& config = *viewer.config;
  // Every configured token is compared, whichever matches, so the time taken says
  // nothing about which one did.
  bool known = false;
  if (config.admin_token && same_text(session, hmac_hex("session", config.admin_token->reveal()))) {
    viewer.admin = viewer.every_repository = known = true;
  }
  for (const auto& token : config.viewer_tokens)
    if (same_text(session, hmac_hex("session", token.reveal()))) viewer.every_repository = known = true;
  for (const auto& repository : config.repositories)
    for (const auto& token : repository.viewer_tokens)
      if (same_text(session, hmac_hex("session", token.reveal()))) {
        viewer.repositories.push_back(&repository);
        known = true;
      }
  if (known) viewer.session = std::move(session);
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
  return viewer.session;
}

std::string PageAccess::set_cookie(std::string_view session) const {
  const auto config = config_.get();
  const bool secure = config->tls.has_value() || config->public_url.rfind("https://", 0) == 0;
  std::string cookie = std::string(kCookie) + "=" + std::string(session) + "; Path=/; HttpOnly; SameSite=Strict";
  if (session.empty()) cookie += "; Max-Age=0";
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
