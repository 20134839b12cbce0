#include "git_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

namespace sandci::git::testing {

namespace fs = std::filesystem;

namespace {

std::vector<char*> to_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

void write_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, const fs::path& cwd) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return {};
  auto args = to_argv(argv);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  CommandResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string git(const fs::path& repo, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git", "-C", repo.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  EXPECT_EQ(r.status, 0) << "git " << args.front() << " failed: " << r.output;
  while (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
  return r.output;
}

Process::Process(const std::vector<std::string>& argv, const fs::path& log) {
  auto args = to_argv(argv);
  pid_ = fork();
  if (pid_ == 0) {
    int out = open(log.empty() ? "/dev/null" : log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(out, 1);
    dup2(out, 2);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    setpgid(0, 0);  // its own group, so stop() also ends the children it forks
    execvp(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() { stop(); }

Process::Process(Process&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
  }
  return *this;
}

void Process::stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);  // the group we created in the child: the server and its children
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

RepoOnServer::RepoOnServer(const fs::path& base, const std::string& name)
    : bare_(base / name), work_(base / ("work-" + name)), name_(name) {
  run({"git", "init", "-q", "--bare", "-b", "main", bare_.string()});
  run({"git", "init", "-q", "-b", "main", work_.string()});
  git(work_, {"config", "user.email", "test@example.com"});
  git(work_, {"config", "user.name", "Test"});
  git(work_, {"remote", "add", "origin", bare_.string()});
}

std::string RepoOnServer::commit(const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& message) {
  for (const auto& [path, content] : files) write_text(work_ / path, content);
  git(work_, {"add", "-A"});
  git(work_, {"commit", "-q", "--allow-empty", "-m", message});
  return git(work_, {"rev-parse", "HEAD"});
}

void RepoOnServer::push(const std::string& refspec) {
  git(work_, {"push", "-q", "origin", refspec});
}

std::string RepoOnServer::commit_many_files(int count, const std::string& prefix) {
  std::string parent = run({"git", "-C", work_.string(), "rev-parse", "-q", "--verify", "HEAD"}).output;
  while (!parent.empty() && parent.back() == '\n') parent.pop_back();
  std::string stream = "commit refs/heads/main\ncommitter Test <test@example.com> 1700000000 +0000\n"
                       "data 11\nmany files\n";
  if (!parent.empty()) stream += "from " + parent + "\n";
  for (int i = 0; i < count; ++i) {
    char path[96];
    std::snprintf(path, sizeof path, "%s/d%03d/f%05d.txt", prefix.c_str(), i / 100, i);
    std::string content = "file " + std::to_string(i) + " of " + prefix + "\n";
    stream += "M 100644 inline " + std::string(path) + "\ndata " + std::to_string(content.size()) +
              "\n" + content + "\n";
  }
  write_text(work_ / ".git" / "import.txt", stream);
  auto r = run({"sh", "-c", "git fast-import --quiet < .git/import.txt"}, work_);
  EXPECT_EQ(r.status, 0) << r.output;
  // The work tree and index are left behind on purpose: writing 10,000 files twice
  // (here and in the checkout under test) would double the test's cost.
  return git(work_, {"rev-parse", "refs/heads/main"});
}

GitDaemon::GitDaemon(const fs::path& base) : port_(free_port()) {
  process_ = Process({"git", "daemon", "--base-path=" + base.string(), "--export-all",
                      "--enable=receive-pack", "--reuseaddr", "--listen=127.0.0.1",
                      "--port=" + std::to_string(port_), base.string()});
  EXPECT_TRUE(wait_for_port(port_)) << "git daemon did not start";
}

std::string GitDaemon::url(const std::string& name) const {
  return "git://127.0.0.1:" + std::to_string(port_) + "/" + name;
}

HttpGitServer::HttpGitServer(const fs::path& base, const std::string& user,
                             const std::string& password)
    : port_(free_port()) {
  const fs::path dir = conf_.path();
  write_text(dir / "users", user + ":" + password + "\n");
  fs::create_directories(dir / "www");
  const std::string backend = "/usr/lib/git-core/git-http-backend";
  write_text(dir / "lighttpd.conf",
             "server.modules = (\"mod_accesslog\", \"mod_alias\", \"mod_setenv\", \"mod_cgi\", \"mod_auth\", "
             "\"mod_authn_file\")\n"
             "server.document-root = \"" + (dir / "www").string() + "\"\n"
             "server.bind = \"127.0.0.1\"\n"
             "server.port = " + std::to_string(port_) + "\n"
             "server.errorlog = \"" + (dir / "error.log").string() + "\"\n"
             "accesslog.filename = \"" + (dir / "access.log").string() + "\"\n"
             "alias.url = (\"/git/\" => \"" + backend + "/\", \"/private/\" => \"" + backend + "/\")\n"
             "$HTTP[\"url\"] =~ \"^/(git|private)/\" {\n"
             "  cgi.assign = (\"\" => \"\")\n"
             "  setenv.add-environment = (\"GIT_PROJECT_ROOT\" => \"" + base.string() + "\", "
             "\"GIT_HTTP_EXPORT_ALL\" => \"1\")\n"
             "}\n"
             "auth.backend = \"plain\"\n"
             "auth.backend.plain.userfile = \"" + (dir / "users").string() + "\"\n"
             "$HTTP[\"url\"] =~ \"^/private/\" {\n"
             "  auth.require = (\"\" => (\"method\" => \"basic\", \"realm\" => \"git\", "
             "\"require\" => \"valid-user\"))\n"
             "}\n");
  process_ = Process({"/usr/sbin/lighttpd", "-D", "-f", (dir / "lighttpd.conf").string()},
                     dir / "stdout.log");
  EXPECT_TRUE(wait_for_port(port_)) << "lighttpd did not start";
}

std::string HttpGitServer::url(const std::string& name) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/git/" + name;
}

std::string HttpGitServer::access_log() const {
  std::ifstream in(conf_.path() / "access.log");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string HttpGitServer::private_url(const std::string& name) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/private/" + name;
}

bool SshServer::available() { return fs::exists("/usr/sbin/sshd"); }

SshServer::SshServer() : port_(free_port()) {
  const fs::path dir = dir_.path();
  passwd* pw = getpwuid(getuid());
  user_ = pw ? pw->pw_name : "root";
  for (const char* key : {"host_key", "client_key", "other_key", "other_host_key"}) {
    auto r = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", (dir / key).string()});
    EXPECT_EQ(r.status, 0) << r.output;
  }
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  write_text(dir / "authorized_keys", read(dir / "client_key.pub"));
  std::string host = "[127.0.0.1]:" + std::to_string(port_) + " ";
  write_text(dir / "known_hosts", host + read(dir / "host_key.pub"));
  write_text(dir / "wrong_known_hosts", host + read(dir / "other_host_key.pub"));
  write_text(dir / "sshd_config",
             "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\n"
             "HostKey " + (dir / "host_key").string() + "\n"
             "PidFile " + (dir / "sshd.pid").string() + "\n"
             "AuthorizedKeysFile " + (dir / "authorized_keys").string() + "\n"
             "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
             "AllowUsers " + user_ + "\nLogLevel VERBOSE\n");
  std::error_code ec;
  fs::create_directories("/run/sshd", ec);  // sshd's privilege separation folder
  process_ = Process({"/usr/sbin/sshd", "-D", "-e", "-f", (dir / "sshd_config").string()},
                     dir / "sshd.log");
  EXPECT_TRUE(wait_for_port(port_)) << "sshd did not start: " << log();
}

std::string SshServer::url(const fs::path& repo) const {
  return "ssh://" + user_ + "@127.0.0.1:" + std::to_string(port_) + repo.string();
}

std::string SshServer::log() const {
  std::ifstream in(dir_.path() / "sshd.log");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

SilentServer::SilentServer() {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(fd_, 16);  // never accept(): the kernel completes handshakes, nobody talks
  socklen_t len = sizeof addr;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

SilentServer::~SilentServer() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace sandci::git::testing
