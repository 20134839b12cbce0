#include "agent/server/session_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>

#include "sandbox/process.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandbox::Fd;

std::string errno_text(int error) { return std::generic_category().message(error); }

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// What reading the file found: the key, nothing there, or a file not to trust.
struct Found {
  enum class Kind { kKey, kMissing, kUntrusted } kind;
  std::string key_or_reason;  // kKey: the bytes; kUntrusted: why
};

Found untrusted(const fs::path& file, const std::string& why) {
  return {Found::Kind::kUntrusted, file.string() + " " + why};
}

// The checks run on the open file (fstat), so the file checked is the file read;
// O_NOFOLLOW: a symbolic link is never followed (it could point at a key someone
// else knows), O_NONBLOCK: a FIFO planted there does not hang the start.
Found read_key(const fs::path& file) {
  const Fd fd{::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK)};
  if (fd.get() < 0) {
    if (errno == ENOENT) return {Found::Kind::kMissing, ""};
    if (errno == ELOOP) return untrusted(file, "is a symbolic link");
    return untrusted(file, "cannot be read: " + errno_text(errno));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return untrusted(file, "cannot be read: " + errno_text(errno));
  if (!S_ISREG(info.st_mode)) return untrusted(file, "is not a regular file");
  if (info.st_uid != ::geteuid())
    return untrusted(file, "is owned by uid " + std::to_string(info.st_uid) + ", not by the agent's uid " +
                               std::to_string(::geteuid()));
  if ((info.st_mode & 077) != 0)
    return untrusted(file, "is open to group or others (mode " + mode_text(info.st_mode) + ")");
  if (static_cast<std::size_t>(info.st_size) != kSessionKeyBytes)
    return untrusted(file, "has " + std::to_string(info.st_size) + " bytes, not " + std::to_string(kSessionKeyBytes));
  // One byte more than a key: a file that grew since fstat is not a key either.
  std::string key(kSessionKeyBytes + 1, '\0');
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd.get(), key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return untrusted(file, "cannot be read: " + errno_text(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != kSessionKeyBytes)
    return untrusted(file, "has " + std::to_string(got) + " bytes, not " + std::to_string(kSessionKeyBytes));
  key.resize(kSessionKeyBytes);
  return {Found::Kind::kKey, std::move(key)};
}

std::expected<std::string, std::string> random_key() {
  std::string key(kSessionKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1)
    return std::unexpected("RAND_bytes failed: no randomness for the session key");
  return key;
}

std::optional<std::string> write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_text(errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

// A temporary file beside `file` (mkstemp: O_EXCL, so nothing planted is
// followed), made 0600, written, fsynced and renamed over `file` (a rename
// replaces a symbolic link itself, not what it points at); then the folder is
// fsynced so the rename outlives a crash.
std::optional<std::string> write_key(const fs::path& file, const std::string& key) {
  std::string temporary = file.string() + ".XXXXXX";
  Fd fd{::mkostemp(temporary.data(), O_CLOEXEC)};
  if (fd.get() < 0) return "cannot create a file beside it: " + errno_text(errno);
  std::optional<std::string> problem;
  if (::fchmod(fd.get(), 0600) != 0) problem = "chmod: " + errno_text(errno);
  if (!problem) problem = write_all(fd.get(), key);
  if (!problem && ::fsync(fd.get()) != 0) problem = "fsync: " + errno_text(errno);
  if (::close(fd.release()) != 0 && !problem) problem = "close: " + errno_text(errno);
  if (!problem && ::rename(temporary.c_str(), file.c_str()) != 0) problem = errno_text(errno);
  if (problem) {
    ::unlink(temporary.c_str());
    return problem;
  }
  const Fd folder{::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (folder.get() < 0 || ::fsync(folder.get()) != 0) return "fsync of its folder: " + errno_text(errno);
  return std::nullopt;
}

// The folder's mode when group or others may write to it (without the sticky
// bit they could rename another file over the key); empty when they may not.
std::string folder_problem(const fs::path& folder) {
  struct stat info {};
  if (::stat(folder.c_str(), &info) != 0) return "";
  if ((info.st_mode & 022) == 0 || (info.st_mode & S_ISVTX) != 0) return "";
  return folder.string() + " is writable by group or others (mode " + mode_text(info.st_mode) +
         "): chmod 700 " + folder.string();
}

}  // namespace

std::expected<SessionKey, std::string> load_session_key(const fs::path& file) {
  SessionKey out;
  out.folder_problem = folder_problem(file.parent_path());
  Found found = read_key(file);
  if (found.kind == Found::Kind::kKey) {
    out.bytes = std::move(found.key_or_reason);
    return out;
  }
  if (found.kind == Found::Kind::kMissing) out.created = true;
  else out.replaced_because = std::move(found.key_or_reason);
  auto key = random_key();
  if (!key) return std::unexpected(key.error());
  if (auto problem = write_key(file, *key))
    return std::unexpected("cannot write the session key " + file.string() + ": " + *problem);
  out.bytes = std::move(*key);
  return out;
}

}  // namespace sandci::agent::server
