#include "sandbox/process.h"

#include <algorithm>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

extern char** environ;

namespace sandci::sandbox {

namespace {
std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Moves a descriptor above the range the child's targets use, so that the
// sequence of dup2 calls in the child never clobbers a source it still needs.
constexpr int kHighFd = 100;

// Everything the forked child needs, prepared before fork: between fork and exec
// the child may only make async-signal-safe calls (no allocation, no locks).
struct ForkPlan {
  std::vector<char*> argv;                // null-terminated
  std::vector<std::pair<int, int>> dups;  // (close-on-exec copy, target)
  std::vector<int> null_targets;          // of 0-2, those given /dev/null
  int last_target = 2;                    // everything above is closed
  bool new_session = false;
  sigset_t mask{};                        // the caller's, as posix_spawn would leave it
};

void close_above(int first, int keep) {
  if (keep >= first) {
    if (keep > first) ::syscall(SYS_close_range, first, keep - 1, 0);
    ::syscall(SYS_close_range, keep + 1, ~0U, 0);
  } else {
    ::syscall(SYS_close_range, first, ~0U, 0);
  }
}

[[noreturn]] void exec_in_child(const ForkPlan& plan, pid_t parent, int error_fd) {
  // Set first, then check the parent is still there: had it died before prctl,
  // the signal would never come.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(127);
  if (plan.new_session) ::setsid();
  for (int target : plan.null_targets) {
    int fd = ::open("/dev/null", (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
    if (fd < 0) ::_exit(127);
    if (fd == target) {
      ::fcntl(fd, F_SETFD, 0);
    } else {
      ::dup2(fd, target);
      ::close(fd);
    }
  }
  for (const auto& [copy, target] : plan.dups) ::dup2(copy, target);  // dup2 clears close-on-exec
  close_above(plan.last_target + 1, error_fd);
  ::sigprocmask(SIG_SETMASK, &plan.mask, nullptr);
  ::execvp(plan.argv[0], plan.argv.data());
  int error = errno;
  (void)!::write(error_fd, &error, sizeof error);
  ::_exit(127);
}

// Forks, in the calling thread, a child that gets PR_SET_PDEATHSIG; returns its
// pid once it has exec'd, or why it could not.
std::expected<pid_t, std::string> fork_with_death_signal(const ForkPlan& plan) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return std::unexpected(errno_text("pipe2"));
  Fd report_read(report[0]), report_write(report[1]);
  // Above every target, so no dup2 in the child replaces it.
  report_write.reset(::fcntl(report[1], F_DUPFD_CLOEXEC, kHighFd));  // closes report[1]
  if (!report_write) return std::unexpected(errno_text("fcntl(F_DUPFD_CLOEXEC)"));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(errno_text("fork"));
  if (pid == 0) exec_in_child(plan, parent, report_write.get());
  report_write.reset();
  int error = 0;
  ssize_t n;
  while ((n = ::read(report_read.get(), &error, sizeof error)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return pid;  // the exec closed the report pipe
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return std::unexpected(std::string("cannot start ") + plan.argv[0] + ": " + std::strerror(error));
}

// One thread, started on first use and never ended, forks every child that must
// die with this process: PR_SET_PDEATHSIG fires when the forking thread exits,
// so a child forked by a job's thread would be killed when that job ends.
class DeathSignalSpawner {
 public:
  // The spawner of this process. A process forked from one that had a spawner
  // inherits the pointer but not the thread, so it makes its own. Spawners are
  // never destroyed: each must outlive the children it forked.
  static DeathSignalSpawner& instance() {
    static std::atomic<DeathSignalSpawner*> current{nullptr};
    DeathSignalSpawner* seen = current.load();
    if (seen && seen->pid_ == ::getpid()) return *seen;
    auto* made = new DeathSignalSpawner;
    // Another thread may have made one meanwhile: use the one installed (ours idles).
    if (current.compare_exchange_strong(seen, made)) return *made;
    return seen->pid_ == ::getpid() ? *seen : *made;
  }
  std::expected<pid_t, std::string> fork_exec(const ForkPlan& plan) {
    std::packaged_task<std::expected<pid_t, std::string>()> task([&plan] { return fork_with_death_signal(plan); });
    auto result = task.get_future();
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
    return result.get();
  }

 private:
  DeathSignalSpawner() {
    // The thread blocks every signal, so the process's signals (SIGTERM, which the
    // daemon waits for with sigtimedwait) never land on it.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread([this] { loop(); }).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  [[noreturn]] void loop() {
    for (;;) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !tasks_.empty(); });
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
    }
  }

  const pid_t pid_ = ::getpid();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<std::expected<pid_t, std::string>()>> tasks_;
};

std::expected<pid_t, std::string> spawn_with_death_signal(const SpawnRequest& request,
                                                          const std::vector<std::pair<int, int>>& dups,
                                                          int last_target) {
  ForkPlan plan;
  for (const auto& a : request.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  plan.dups = dups;
  for (int target : {0, 1, 2}) {
    bool given = false;
    for (const auto& d : dups) given = given || d.second == target;
    if (!given) plan.null_targets.push_back(target);
  }
  plan.last_target = last_target;
  plan.new_session = request.new_session;
  pthread_sigmask(SIG_SETMASK, nullptr, &plan.mask);
  return DeathSignalSpawner::instance().fork_exec(plan);
}
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

namespace {
Child child_of(pid_t pid) {
  Child child;
  child.pid = pid;
  // glibc 2.36 declares pidfd_open without C linkage for C++; call it directly.
  child.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return child;
}
}  // namespace

std::expected<Child, std::string> spawn(const SpawnRequest& request) {
  if (request.argv.empty()) return std::unexpected("spawn: empty argv");
  std::vector<std::pair<int, int>> wanted;  // (source, target)
  if (request.stdin_fd >= 0) wanted.emplace_back(request.stdin_fd, 0);
  if (request.stdout_fd >= 0) wanted.emplace_back(request.stdout_fd, 1);
  if (request.stderr_fd >= 0) wanted.emplace_back(request.stderr_fd, 2);
  for (const auto& e : request.extra_fds) wanted.push_back(e);

  std::vector<Fd> high;  // close-on-exec copies, closed again when we return
  std::vector<std::pair<int, int>> dups;  // (copy, target)
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
    dups.emplace_back(copy, target);
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
  if (request.die_with_parent) {
    posix_spawn_file_actions_destroy(&actions);
    auto pid = spawn_with_death_signal(request, dups, last_target);
    if (!pid) return std::unexpected(pid.error());
    return child_of(*pid);
  }

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
  return child_of(pid);
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

std::vector<pid_t> host_processes_mentioning(const std::string& needle) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = read_proc_file(it->path() / "cmdline", 1 << 14).value_or("");
    const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid != ::getpid() && cmdline.find(needle) != std::string::npos) found.push_back(pid);
  }
  return found;
}

std::optional<std::string> read_proc_file(const std::string& path, std::size_t limit) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  return read_to_end(fd.get(), limit);
}

std::optional<std::string> read_to_end(int fd, std::size_t limit) {
  std::string text;
  char buf[4096];
  while (text.size() < limit) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

}  // namespace sandci::sandbox
