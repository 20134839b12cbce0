#pragma once
// Real git servers on 127.0.0.1 for the git library's integration tests: a git daemon,
// lighttpd + git http-backend (optionally behind basic auth), and a silent TCP server.
// Each fixture owns its temp folder and the processes it starts, stopped by pid.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/loopback.h"
#include "support/temp_dir.h"

namespace sandci::git::testing {

struct CommandResult {
  int status = -1;  // exit code, or -1 when it did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `argv` (no shell) in `cwd`, waits, captures output.
CommandResult run(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});
// Shortcut for git: run({"git", "-C", repo, args...}); aborts the test on failure.
std::string git(const std::filesystem::path& repo, const std::vector<std::string>& args);

// sandci::testing::TempDir named sandci-git-test-XXXXXX: a leftover folder names these tests.
class TempDir : public ::sandci::testing::TempDir {
 public:
  TempDir() : ::sandci::testing::TempDir("sandci-git-test-") {}
};

using ::sandci::testing::free_port;
// Waits until something accepts TCP connections on 127.0.0.1:port (10 s at most).
using ::sandci::testing::wait_for_port;

// A child process stopped (SIGTERM, then SIGKILL) and reaped when this goes away.
class Process {
 public:
  Process() = default;
  explicit Process(const std::vector<std::string>& argv, const std::filesystem::path& log = {});
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  void stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A server-side bare repository plus a work clone to make and push commits with real git.
class RepoOnServer {
 public:
  RepoOnServer(const std::filesystem::path& base, const std::string& name);
  const std::filesystem::path& bare() const { return bare_; }
  const std::filesystem::path& work() const { return work_; }
  const std::string& name() const { return name_; }
  // Writes files (path -> content), commits on the current branch, returns the SHA.
  std::string commit(const std::vector<std::pair<std::string, std::string>>& files,
                     const std::string& message);
  std::string commit_one(const std::string& message) {
    return commit({{"file.txt", message}}, message);
  }
  void push(const std::string& refspec);  // e.g. "HEAD:refs/heads/main", "+HEAD:main"
  // One commit adding `count` small files under many folders (git fast-import, fast),
  // on top of the work clone's HEAD; returns its SHA. Not pushed. Only refs move: the
  // work tree and index stay as they were, so make it the last commit of a test.
  std::string commit_many_files(int count, const std::string& prefix);

 private:
  std::filesystem::path bare_, work_;
  std::string name_;
};

// Serves every repository under `base` on git://127.0.0.1:port/<name>.
class GitDaemon {
 public:
  explicit GitDaemon(const std::filesystem::path& base);
  std::string url(const std::string& name) const;
  int port() const { return port_; }
  void stop() { process_.stop(); }

 private:
  int port_;
  Process process_;
};

// Smart HTTP: http://127.0.0.1:port/git/<name> (public) and /private/<name>, which
// demands basic auth user:password.
class HttpGitServer {
 public:
  HttpGitServer(const std::filesystem::path& base, const std::string& user,
                const std::string& password);
  std::string url(const std::string& name) const;          // public
  std::string private_url(const std::string& name) const;  // auth required
  int port() const { return port_; }
  std::string access_log() const;  // one line per request, with the user name if any

 private:
  TempDir conf_;
  int port_;
  Process process_;
};

// OpenSSH's sshd on 127.0.0.1 with its own host key and config, accepting one client
// key for the current user; repositories are addressed by absolute path.
// available() is false when /usr/sbin/sshd is not installed.
class SshServer {
 public:
  SshServer();
  static bool available();
  std::string url(const std::filesystem::path& repo) const;  // ssh://user@127.0.0.1:port/abs
  std::filesystem::path client_key() const { return dir_.path() / "client_key"; }
  std::filesystem::path other_key() const { return dir_.path() / "other_key"; }  // not authorized
  std::filesystem::path known_hosts() const { return dir_.path() / "known_hosts"; }  // the real key
  std::filesystem::path wrong_known_hosts() const { return dir_.path() / "wrong_known_hosts"; }
  std::string user() const { return user_; }
  int port() const { return port_; }
  std::string log() const;

 private:
  TempDir dir_;
  std::string user_;
  int port_ = 0;
  Process process_;
};

// Accepts TCP connections (kernel backlog) and never answers: a hung server.
class SilentServer {
 public:
  SilentServer();
  ~SilentServer();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace sandci::git::testing
