#include "agent/config/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <system_error>
#include <thread>

namespace sandci::agent::config {
namespace {

std::string errno_text(int error) { return std::generic_category().message(error); }

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Closes the descriptor on every path out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// How the file is named in messages: "PATH", or "credential 'NAME' (PATH)".
std::string describe(const SecretSource& source, const std::filesystem::path& path) {
  if (source.kind == SecretSource::Kind::kFile) return path.string();
  return "credential '" + source.name + "' ($CREDENTIALS_DIRECTORY/" + source.name + " = " +
         path.string() + ")";
}

// The checks run on the open file (fstat), so the file checked is the file read.
std::expected<void, std::string> check_open_file(const SecretSource& source,
                                                 const std::filesystem::path& path, int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return std::unexpected(describe(source, path) + ": " + errno_text(errno));
  if (!S_ISREG(info.st_mode)) return std::unexpected(describe(source, path) + " is not a regular file");
  if (source.kind == SecretSource::Kind::kFile && (info.st_mode & 077) != 0) {
    const char* what = (info.st_mode & 044) != 0 ? "readable" : "writable";
    return std::unexpected(path.string() + " is " + what + " by group or others (mode " +
                           mode_text(info.st_mode) + "): chmod 600 " + path.string());
  }
  if (static_cast<std::size_t>(info.st_size) > kMaxSecretBytes)
    return std::unexpected(describe(source, path) + " is larger than " +
                           std::to_string(kMaxSecretBytes) + " bytes: is it the right file?");
  return {};
}

std::expected<std::string, std::string> read_all(const SecretSource& source,
                                                 const std::filesystem::path& path, int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected("cannot read " + describe(source, path) + ": " + errno_text(errno));
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxSecretBytes)
      return std::unexpected(describe(source, path) + " is larger than " +
                             std::to_string(kMaxSecretBytes) + " bytes: is it the right file?");
  }
}

}  // namespace

Environment Environment::from_process() {
  Environment env;
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY")) env.credentials_directory = dir;
  if (const char* dir = std::getenv("STATE_DIRECTORY")) env.state_directory = dir;
  env.cores = std::max(1u, std::thread::hardware_concurrency());
  return env;
}

std::expected<std::filesystem::path, std::string> secret_file(const SecretSource& source,
                                                              const Environment& env) {
  if (source.kind == SecretSource::Kind::kFile) return std::filesystem::path{source.name};
  const std::string& name = source.name;
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    return std::unexpected("credential '" + name + "' must be a plain name (no '/')");
  if (env.credentials_directory.empty())
    return std::unexpected("credential '" + name +
                           "' needs $CREDENTIALS_DIRECTORY, which is not set (systemd sets it "
                           "for LoadCredential=" + name + ":FILE)");
  return std::filesystem::path{env.credentials_directory} / name;
}

std::expected<Secret, std::string> read_secret(const SecretSource& source, const Environment& env) {
  auto path = secret_file(source, env);
  if (!path) return std::unexpected(path.error());
  // O_NONBLOCK: a FIFO at the path must not hang start-up (it is refused below).
  const FileDescriptor fd{::open(path->c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (fd.get() < 0) return std::unexpected("cannot read " + describe(source, *path) + ": " + errno_text(errno));
  if (auto checked = check_open_file(source, *path, fd.get()); !checked)
    return std::unexpected(checked.error());
  auto text = read_all(source, *path, fd.get());
  if (!text) return std::unexpected(text.error());
  if (text->ends_with("\r\n")) text->resize(text->size() - 2);
  else if (text->ends_with('\n')) text->pop_back();
  if (text->empty()) return std::unexpected(describe(source, *path) + " is empty: a secret needs a value");
  return Secret{std::move(*text)};
}

}  // namespace sandci::agent::config
