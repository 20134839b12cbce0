#pragma once
// Repository URLs: parsing just enough to remove credentials before a URL is stored,
// hashed or logged, and to name a repository's mirror folder.
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sandci::git {

struct RepoUrl {
  std::string scheme;    // "https", "ssh", "git", "file"...; "ssh" for scp-like user@host:path
  std::string user;      // may be a token for http(s): treat as secret there
  std::string password;  // always secret
  std::string host;      // without brackets for IPv6
  int port = 0;          // 0: the scheme's default
  std::string path;      // as written, e.g. "/owner/repo.git" or "owner/repo.git" (scp-like)
  bool scp_like = false;
};

// nullopt when `url` is empty or its authority is malformed (e.g. a bad port).
// Local paths parse as scheme "file" with the path.
std::optional<RepoUrl> parse_repo_url(std::string_view url);

// The URL with secrets removed: the password always; the user too for http(s) (forges
// put tokens there), but kept for ssh where "git@" is needed and not secret; the
// query and fragment are dropped (some forges accept ?private_token=). A string that
// does not parse comes back as "<invalid url>" rather than risking a leak.
std::string redact_url(std::string_view url);

// A folder name unique to the repository and safe on any filesystem:
// "<readable slug>-<12 hex of SHA-1 of the redacted URL>", e.g.
// "example.com-owner-repo-3f2a9c0d1b7e". Credentials do not change it.
std::string mirror_dir_name(std::string_view url);

// Replaces each non-empty secret found in `text` with "***" (libgit2 messages may
// echo a URL or user name).
std::string redact_secrets(std::string text, std::span<const std::string> secrets);

// A submodule URL from .gitmodules, resolved like git does: "./x" and "../x" are
// relative to the superproject's URL; anything else is returned unchanged.
std::string resolve_submodule_url(std::string_view parent_url, std::string_view sub_url);

// True when both URLs reach the same server (scheme, host and port), the condition
// for handing one repository's credentials to another (e.g. a submodule).
bool same_server(std::string_view a, std::string_view b);

}  // namespace sandci::git
