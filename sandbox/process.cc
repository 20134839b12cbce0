#include "sandbox/process.h"

#include <algorithm>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace sandci::sandbox {

namespace {
std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Moves a descriptor above the range the child's targets use, so that the
// sequence of dup2 calls in the child never clobbers a source it still needs.
constexpr int kHighFd = 100;
}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) reset(std::exchange(other.fd_, -1));
  return *this;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::expected<Pipe, std::string> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::unexpected(errno_text("pipe2"));
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

std::expected<Fd, std::string> make_memfd(const char* name) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_text("memfd_create"));
  return Fd(fd);
}

std::expected<Child, std::string> spawn(const SpawnRequest& request) {
  if (request.argv.empty()) return std::unexpected("spawn: empty argv");
  std::vector<std::pair<int, int>> wanted;  // (source, target)
  if (request.stdin_fd >= 0) wanted.emplace_back(request.stdin_fd, 0);
  if (request.stdout_fd >= 0) wanted.emplace_back(request.stdout_fd, 1);
  if (request.stderr_fd >= 0) wanted.emplace_back(request.stderr_fd, 2);
  for (const auto& e : request.extra_fds) wanted.push_back(e);

  std::vector<Fd> high;  // close-on-exec copies, closed again when we return
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int target : {0, 1, 2}) {
    bool given = false;
    for (const auto& w : wanted) given = given || w.second == target;
    if (!given) {
      posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY,
                                       0);
    }
  }
  std::string error;
  for (const auto& [source, target] : wanted) {
    int copy = ::fcntl(source, F_DUPFD_CLOEXEC, kHighFd);
    if (copy < 0) {
      error = errno_text("fcntl(F_DUPFD_CLOEXEC)");
      break;
    }
    high.emplace_back(copy);
    // dup2 clears close-on-exec on the target, so exactly these survive exec.
    posix_spawn_file_actions_adddup2(&actions, copy, target);
  }
  if (!error.empty()) {
    posix_spawn_file_actions_destroy(&actions);
    return std::unexpected(error);
  }
  // Everything else is closed in the child, whether or not it was opened with
  // close-on-exec: a sandbox that outlives the agent (after a SIGKILL) must not
  // keep the agent's listening socket or its clients' connections open.
  int last_target = 2;
  for (const auto& w : wanted) last_target = std::max(last_target, w.second);
  posix_spawn_file_actions_addclosefrom_np(&actions, last_target + 1);

  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (request.new_session) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return std::unexpected("cannot start " + request.argv[0] + ": " + std::strerror(rc));
  }
  Child child;
  child.pid = pid;
  // glibc 2.36 declares pidfd_open without C linkage for C++; call it directly.
  child.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return child;
}

int wait_child(Child& child) {
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  child.pid = -1;
  child.pidfd.reset();
  return status;
}

bool wait_exit(const Child& child, int timeout_ms) {
  if (child.pid <= 0) return true;
  auto exited = [&child] {
    siginfo_t info{};
    return ::waitid(P_PID, child.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child.pid;
  };
  if (exited()) return true;
  if (child.pidfd) {
    pollfd p{child.pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
    }
    return exited();
  }
  // No pidfd (old kernel): look every 10 ms.
  for (int waited = 0; timeout_ms < 0 || waited < timeout_ms; waited += 10) {
    ::usleep(10000);
    if (exited()) return true;
  }
  return false;
}

bool RunResult::ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string RunResult::describe() const {
  std::string text = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                       : "signal " + std::to_string(WTERMSIG(status));
  std::string first = err.substr(0, err.find('\n'));
  if (!first.empty()) text += ": " + first;
  return text;
}

std::expected<RunResult, std::string> run_capture(const std::vector<std::string>& argv, std::size_t max_capture,
                                                  std::chrono::milliseconds timeout) {
  auto out = make_pipe();
  if (!out) return std::unexpected(out.error());
  auto err = make_pipe();
  if (!err) return std::unexpected(err.error());
  SpawnRequest request{argv, -1, out->write.get(), err->write.get(), {}};
  auto child = spawn(request);
  out->write.reset();
  err->write.reset();
  if (!child) return std::unexpected(child.error());

  using Clock = std::chrono::steady_clock;
  const bool bounded = timeout.count() > 0;
  const auto deadline = Clock::now() + timeout;
  RunResult result;
  pollfd fds[2] = {{out->read.get(), POLLIN, 0}, {err->read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buf[16384];
  bool timed_out = false;
  while (open_count > 0) {
    int wait_ms = -1;
    if (bounded) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(std::min<long long>(left, 1000));
    }
    if (::poll(fds, 2, wait_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      std::size_t keep = std::min<std::size_t>(n, max_capture - std::min(max_capture, sinks[i]->size()));
      sinks[i]->append(buf, keep);
    }
  }
  // Both streams closed: the command is exiting; give it what is left of the time.
  if (!timed_out && bounded) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    timed_out = !wait_exit(*child, static_cast<int>(std::max<long long>(left, 0)));
  }
  if (timed_out) {
    if (child->pidfd) {
      ::syscall(SYS_pidfd_send_signal, child->pidfd.get(), SIGKILL, nullptr, 0);
    } else {
      ::kill(child->pid, SIGKILL);
    }
    wait_child(*child);
    return std::unexpected(join_args(argv) + ": no answer after " + std::to_string(timeout.count()) +
                           " ms; killed");
  }
  result.status = wait_child(*child);
  return result;
}

std::string join_args(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

}  // namespace sandci::sandbox
