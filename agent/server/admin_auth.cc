#include "agent/server/admin_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace sandci::agent::server {

namespace {
constexpr std::size_t kActorLimit = 64;
}

bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

std::optional<http::HttpResponse> refuse_unless_admin(const config::AgentConfig& config,
                                                      const http::HttpRequest& request,
                                                      std::string_view refused_what) {
  if (!config.admin_token)
    return http::HttpResponse::text(403, "no admin_token is configured: " + std::string(refused_what) + "\n");
  const std::string auth = request.headers.get("Authorization").value_or("");
  const std::string_view bearer = "Bearer ";
  if (auth.rfind(bearer, 0) != 0 ||
      !same_secret(std::string_view(auth).substr(bearer.size()), config.admin_token->reveal()))
    return http::HttpResponse::text(401, "a valid admin token is needed (Authorization: Bearer ...)\n");
  return std::nullopt;
}

std::string admin_actor(const http::HttpRequest& request) {
  std::string given = request.headers.get("X-Sandci-Actor").value_or("");
  const auto first = given.find_first_not_of(" \t");
  if (first == std::string::npos) return "admin";
  given = given.substr(first, given.find_last_not_of(" \t") - first + 1);
  if (given.size() > kActorLimit) given.resize(kActorLimit);
  for (char& c : given)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return given;
}

}  // namespace sandci::agent::server
