#pragma once
// OpenSSH known_hosts checking for libgit2's certificate callback: libgit2 1.5 only
// consults ~/.ssh/known_hosts, while each repository here names its own file.
// Supported: plain host patterns ("host", "[host]:port", "*", "?", "!negation",
// comma lists), hashed host names ("|1|salt|hash", as `ssh-keygen -H` writes them)
// and @revoked. @cert-authority lines and malformed hashed entries are skipped, so
// such hosts come out as unknown (refused), never as trusted.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::git {

enum class HostKeyMatch { kMatch, kMismatch, kUnknownHost, kRevoked };

class KnownHosts {
 public:
  static KnownHosts parse(std::string_view text);
  // An unreadable file gives an empty set (every host unknown).
  static KnownHosts load(const std::filesystem::path& file);

  // `key_blob` is the raw SSH wire-format public key the server presented.
  // kMismatch: the host is listed but with other keys (possible attack).
  HostKeyMatch check(std::string_view host, int port, std::string_view key_blob) const;

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<std::string> patterns;  // plain entry
    // Hashed entry (hash not empty): HMAC-SHA1(key = salt, host name) equals `hash`.
    std::string salt;
    std::string hash;
    std::string key_blob;  // decoded base64
    bool revoked = false;
  };
  std::vector<Entry> entries_;
};

// Standard base64 (RFC 4648); empty on malformed input.
std::string base64_decode(std::string_view text);

// OpenSSH's hashed host name: HMAC-SHA1 of `name` ("host", or "[host]:port" for a
// port other than 22) keyed with the decoded salt; 20 raw bytes.
std::string hash_host_name(std::string_view salt, std::string_view name);

// True when `text` matches the OpenSSH glob `pattern` ('*' and '?').
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sandci::git
