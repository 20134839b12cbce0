#include "git/known_hosts.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

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
    if (fields.size() < 3 || fields[0].starts_with('|')) continue;  // hashed: skipped
    entry.patterns = split_commas(fields[0]);
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
  for (const auto& e : entries_) {
    if (!host_matches(e.patterns, name)) continue;
    if (e.key_blob == key_blob) {
      if (e.revoked) return HostKeyMatch::kRevoked;
    } else {
      listed = listed || !e.revoked;
    }
  }
  for (const auto& e : entries_) {
    if (!e.revoked && e.key_blob == key_blob && host_matches(e.patterns, name)) {
      return HostKeyMatch::kMatch;
    }
  }
  return listed ? HostKeyMatch::kMismatch : HostKeyMatch::kUnknownHost;
}

}  // namespace sandci::git
