#include "git/known_hosts.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <sstream>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sandci::git {
namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    std::size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    if (comma > start) out.emplace_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

constexpr std::size_t kSha1Bytes = 20;
constexpr std::string_view kHashedPrefix = "|1|";

// "|1|base64(salt)|base64(hash)" with a 20-byte salt and hash, as OpenSSH writes
// and requires; nullopt for anything else.
std::optional<std::pair<std::string, std::string>> parse_hashed(std::string_view field) {
  if (!field.starts_with(kHashedPrefix)) return std::nullopt;
  field.remove_prefix(kHashedPrefix.size());
  const std::size_t bar = field.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  std::string salt = base64_decode(field.substr(0, bar));
  std::string hash = base64_decode(field.substr(bar + 1));
  if (salt.size() != kSha1Bytes || hash.size() != kSha1Bytes) return std::nullopt;
  return std::pair{std::move(salt), std::move(hash)};
}

// Constant time, so a timing probe learns nothing about how much of a hash matched.
bool hashed_name_matches(const std::string& salt, const std::string& hash,
                         const std::string& name) {
  const std::string computed = hash_host_name(salt, name);
  return computed.size() == hash.size() &&
         CRYPTO_memcmp(computed.data(), hash.data(), hash.size()) == 0;
}

// OpenSSH semantics: a negated pattern that matches excludes the host outright.
bool host_matches(const std::vector<std::string>& patterns, const std::string& name) {
  bool matched = false;
  for (const auto& p : patterns) {
    if (p.starts_with('!')) {
      if (glob_match(lower(p.substr(1)), name)) return false;
    } else if (glob_match(lower(p), name)) {
      matched = true;
    }
  }
  return matched;
}

}  // namespace

std::string hash_host_name(std::string_view salt, std::string_view name) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
           reinterpret_cast<const unsigned char*>(name.data()), name.size(), digest,
           &length) == nullptr)
    return {};
  return std::string(reinterpret_cast<const char*>(digest), length);
}

bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return {};
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

KnownHosts KnownHosts::parse(std::string_view text) {
  KnownHosts hosts;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto fields = split_ws(line);
    if (fields.empty() || fields[0].starts_with('#')) continue;
    Entry entry;
    if (fields[0].starts_with('@')) {
      if (fields[0] != "@revoked") continue;  // @cert-authority: not supported
      entry.revoked = true;
      fields.erase(fields.begin());
    }
    if (fields.size() < 3) continue;
    if (fields[0].starts_with('|')) {
      auto hashed = parse_hashed(fields[0]);
      if (!hashed) continue;  // another hash scheme or a broken line: trust nothing
      entry.salt = std::move(hashed->first);
      entry.hash = std::move(hashed->second);
    } else {
      entry.patterns = split_commas(fields[0]);
    }
    entry.key_blob = base64_decode(fields[2]);
    if (entry.key_blob.empty()) continue;
    hosts.entries_.push_back(std::move(entry));
  }
  return hosts;
}

KnownHosts KnownHosts::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str());
}

HostKeyMatch KnownHosts::check(std::string_view host, int port,
                               std::string_view key_blob) const {
  std::string name = lower(host);
  if (port != 0 && port != 22) name = "[" + name + "]:" + std::to_string(port);
  bool listed = false;
  auto names_host = [&name](const Entry& e) {
    return e.hash.empty() ? host_matches(e.patterns, name)
                          : hashed_name_matches(e.salt, e.hash, name);
  };
  for (const auto& e : entries_) {
    if (!names_host(e)) continue;
    if (e.key_blob == key_blob) {
      if (e.revoked) return HostKeyMatch::kRevoked;
    } else {
      listed = listed || !e.revoked;
    }
  }
  for (const auto& e : entries_) {
    if (!e.revoked && e.key_blob == key_blob && names_host(e)) {
      return HostKeyMatch::kMatch;
    }
  }
  return listed ? HostKeyMatch::kMismatch : HostKeyMatch::kUnknownHost;
}

}  // namespace sandci::git
