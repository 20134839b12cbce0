#pragma once
// What a repository needs to authenticate. Values here are secrets: they are handed to
// libgit2 and never logged, stored in a mirror's config, or put in an error message.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sandci::git {

struct HttpsToken {
  std::string username = "x-access-token";  // forges accept any name with a token
  std::string token;
};

struct SshKey {
  std::string username = "git";       // used when the URL names none
  std::filesystem::path private_key;  // OpenSSH or PEM private key file
  std::filesystem::path public_key;   // optional; libssh2 derives it when empty
  std::string passphrase;             // optional
};

struct Credentials {
  std::optional<HttpsToken> https;
  std::optional<SshKey> ssh;
  // For ssh URLs: the only host keys trusted. Without it every SSH host is refused.
  std::filesystem::path known_hosts;

  // Every secret string, for redact_secrets().
  std::vector<std::string> secrets() const {
    std::vector<std::string> out;
    if (https) out.push_back(https->token);
    if (ssh) out.push_back(ssh->passphrase);
    return out;
  }
};

}  // namespace sandci::git
