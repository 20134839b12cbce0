#pragma once
// Failures of git operations are values: a kind a caller can act on (retry later,
// tell the user to fix a credential, mark the run as "commit gone") plus a message
// that names the repository by its URL with any credential removed.
#include <string>
#include <string_view>

namespace sandci::git {

enum class ErrorKind {
  kAuthFailed,        // the server rejected the credential, or asked for one we lack
  kUnknownHostKey,    // SSH host key absent from (or different in) known_hosts
  kShaNotFound,       // the commit is not in the repository (e.g. force-pushed away)
  kUnreachable,       // cannot resolve or connect to the server
  kTimeout,           // the operation ran past its deadline or the server went silent
  kRepoNotFound,      // the server answered but has no such repository
  kInvalidArgument,   // bad URL, SHA, destination folder
  kIo,                // local filesystem trouble (disk full, permissions)
  kCancelled,         // the caller's cancel flag was set (SIGINT/SIGTERM) during the fetch
  kOther,             // anything else libgit2 reports
};

// "auth_failed", "unknown_host_key", ...: stable names for logs and statuses.
std::string_view kind_name(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kOther;
  std::string message;  // never contains a secret
  std::string url;      // redacted (no user info)

  // "<kind>: <message> (<url>)"
  std::string to_string() const;
};

}  // namespace sandci::git
