#include "git/error.h"

namespace sandci::git {

std::string_view kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kAuthFailed: return "auth_failed";
    case ErrorKind::kUnknownHostKey: return "unknown_host_key";
    case ErrorKind::kShaNotFound: return "sha_not_found";
    case ErrorKind::kUnreachable: return "unreachable";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kRepoNotFound: return "repo_not_found";
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kCancelled: return "cancelled";
    case ErrorKind::kOther: return "other";
  }
  return "other";
}

std::string Error::to_string() const {
  std::string out(kind_name(kind));
  out += ": ";
  out += message;
  if (!url.empty()) out += " (" + url + ")";
  return out;
}

}  // namespace sandci::git
