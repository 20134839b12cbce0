#pragma once
// The key of the login cookie's HMACs (agent/server/pages_access.h), kept in
// <state_dir>/session.key so that a restart (an upgrade, a crash, `systemctl
// restart`) does not log everybody out. Deleting the file and restarting logs
// everybody out: the next start makes a new key.
//
// The file holds kSessionKeyBytes random bytes (OpenSSL's RAND_bytes), mode 0600,
// owned by the agent's user; it is written to a temporary file beside it, fsynced
// and renamed into place, so a crash leaves either the old file or the new one.
// A file found that the agent will not trust (a symbolic link, not a regular
// file, owned by another user, readable or writable by group or others, not
// exactly kSessionKeyBytes long, unreadable) is replaced by a new key rather than
// stopping the agent: the worst it costs is that people log in again, and the
// reason is returned so the agent logs it. Only when no key can be written at
// all (a read-only file system, a folder at that path) is it an error. The key
// itself is never put in a message.
#include <cstddef>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>

namespace sandci::agent::server {

inline constexpr std::size_t kSessionKeyBytes = 32;
inline constexpr std::string_view kSessionKeyFile = "session.key";

struct SessionKey {
  std::string bytes;             // kSessionKeyBytes random bytes: never logged
  bool created = false;          // there was no file: a new key was written
  std::string replaced_because;  // a file was there but not trusted (why); a new key was written
  // Set when the key's folder is writable by group or others (who could swap the
  // file): what to do about it. The key is still used.
  std::string folder_problem;
};

// Reads the key in `file`, or writes a new one when there is none or the one there
// is not trusted (see above). An error (naming the file) only when a new key
// cannot be made or written.
std::expected<SessionKey, std::string> load_session_key(const std::filesystem::path& file);

}  // namespace sandci::agent::server
