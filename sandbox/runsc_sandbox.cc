#include "sandbox/runsc_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "sandbox/helper_outcome.h"
#include "sandbox/oci_spec.h"
#include "sandbox/process.h"

namespace sandci::sandbox {

namespace {
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// After a timed-out step's processes were sent SIGKILL, how long runsc exec may
// take to notice before the whole sandbox is killed instead.
constexpr auto kTreeKillGrace = std::chrono::seconds(5);
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr int kStopTimeoutMs = 10000;
// A runsc control command (state, kill, delete, ps) talks to the sandbox; one
// that gets no answer (a sandbox wedged while booting) must not block its
// caller for good: it is killed after this long.
constexpr auto kControlTimeout = std::chrono::seconds(20);
// How long the teardown waits for the sandbox's host processes to be gone.
constexpr int kGoneTimeoutMs = 10000;
// How often a running exec samples the cgroup's counters: the sandbox's cgroup
// disappears soon after the sandbox dies, so the last reading may come too late.
constexpr int kSampleMs = 100;

bool write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

std::string read_text_file(const std::string& path, std::size_t max = 1 << 16) {
  std::ifstream in(path);
  std::string s(max, '\0');
  in.read(s.data(), static_cast<std::streamsize>(max));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

pid_t parent_of(pid_t pid) {
  std::string stat = read_text_file("/proc/" + std::to_string(pid) + "/stat", 1024);
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// Waits until no host process mentions `needle` any more, at most timeout_ms.
bool wait_processes_gone(const std::string& needle, int timeout_ms) {
  const auto give_up = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (host_processes_mentioning(needle).empty()) return true;
    if (Clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Reads what is available now; false once the writer side is closed.
bool read_some(int fd, const std::function<void(std::string_view)>& sink) {
  char buf[kReadChunk];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) {
    sink(std::string_view(buf, static_cast<std::size_t>(n)));
    return true;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  return false;
}

// Parses `runsc ps` (table: UID PID PPID ...) into pid -> parent pid.
std::map<int, int> parse_ps(const std::string& table) {
  std::map<int, int> parents;
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string uid;
    int pid = 0, ppid = 0;
    if (fields >> uid >> pid >> ppid) parents[pid] = ppid;
  }
  return parents;
}

ExitStatus status(ExitKind kind, std::string detail, int code = 0, int sig = 0) {
  return ExitStatus{kind, code, sig, std::move(detail)};
}
}  // namespace

const char* to_string(ExitKind kind) {
  switch (kind) {
    case ExitKind::kExited: return "exited";
    case ExitKind::kSignaled: return "signaled";
    case ExitKind::kTimedOut: return "timed out";
    case ExitKind::kOutOfMemory: return "out of memory";
    case ExitKind::kPidsLimit: return "process limit reached";
    case ExitKind::kKilled: return "killed";
    case ExitKind::kFailed: return "failed";
  }
  return "unknown";
}

std::vector<std::string> RunscCommand::argv(std::initializer_list<std::string> args) const {
  std::vector<std::string> v{runsc};
  v.insert(v.end(), global_flags.begin(), global_flags.end());
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

RunscSandbox::RunscSandbox(RunscCommand command, std::string id, std::string bundle, SandboxSpec spec)
    : command_(std::move(command)),
      id_(std::move(id)),
      bundle_(std::move(bundle)),
      spec_(std::move(spec)),
      cgroup_(cgroups_path_for(id_)),
      budget_(spec_.limits.log_bytes) {}

std::expected<std::unique_ptr<RunscSandbox>, SandboxError> RunscSandbox::start(RunscCommand command,
                                                                               std::string id,
                                                                               std::string bundle,
                                                                               SandboxSpec spec) {
  std::unique_ptr<RunscSandbox> sandbox(
      new RunscSandbox(std::move(command), std::move(id), std::move(bundle), std::move(spec)));
  // runsc's own messages (and init's stderr) go to a file: they matter only when
  // the start fails.
  std::string log_path = sandbox->bundle_ + "/runsc-run.log";
  Fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log) return std::unexpected(SandboxError{"cannot create " + log_path});
  auto ready = make_pipe();
  if (!ready) return std::unexpected(SandboxError{ready.error()});
  const auto started_at = Clock::now();
  const std::string pid_file = sandbox->bundle_ + "/sandbox.pid";
  auto run_argv = sandbox->command_.argv({"run", "--pid-file", pid_file, "--bundle", sandbox->bundle_, sandbox->id_});
  run_argv.insert(run_argv.begin(), sandbox->command_.run_prefix.begin(), sandbox->command_.run_prefix.end());
  SpawnRequest request{std::move(run_argv), -1, ready->write.get(), log.get(), {}, true};
  // A killed agent's `runsc run` must not finish creating a sandbox after the
  // next start has reaped (runsc's sandbox and gofer die with it: they are attached).
  request.die_with_parent = true;
  auto child = spawn(request);
  ready->write.reset();
  if (!child) return std::unexpected(SandboxError{child.error()});
  sandbox->supervisor_ = std::move(*child);

  // init prints "ready" once the container runs; runsc exiting first means it failed.
  std::string said;
  const auto give_up = Clock::now() + kStartTimeout;
  while (said.find('\n') == std::string::npos && Clock::now() < give_up) {
    pollfd fds[2] = {{ready->read.get(), POLLIN, 0}, {sandbox->supervisor_.pidfd.get(), POLLIN, 0}};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now()).count());
    if (::poll(fds, sandbox->supervisor_.pidfd ? 2 : 1, std::min(ms, 100)) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      char buf[64];
      ssize_t n = ::read(ready->read.get(), buf, sizeof buf);
      if (n <= 0) break;
      said.append(buf, static_cast<std::size_t>(n));
    }
    if (wait_exit(sandbox->supervisor_, 0)) break;
  }
  if (said.starts_with("ready\n")) {
    sandbox->pin_sandbox_process();
    sandbox->timings_.start = Clock::now() - started_at;
    return sandbox;
  }
  std::string reason = first_lines(read_text_file(log_path));
  if (reason.empty()) reason = said.empty() ? "no ready signal from the sandbox" : "unexpected output: " + said;
  return std::unexpected(SandboxError{"runsc could not start sandbox " + sandbox->id_ + ": " + reason});
  // (the destructor stops what did start)
}

void RunscSandbox::pin_sandbox_process() {
  if (sandbox_pidfd_ || supervisor_.pid <= 0) return;
  // Only the supervisor's own child: a pid read from the file could otherwise
  // be a recycled one. runsc writes the file once the sandbox process exists.
  const pid_t pid = std::atoi(read_text_file(bundle_ + "/sandbox.pid", 32).c_str());
  if (pid > 0 && parent_of(pid) == supervisor_.pid) {
    sandbox_pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  }
}

RunscSandbox::~RunscSandbox() {
  bool supervisor_cleaned_up = false;
  if (supervisor_.pid > 0) {
    // A start that failed or timed out may still have a sandbox process:
    // pinned now, it is killed directly rather than through runsc, which may
    // get no answer from a sandbox that never finished booting.
    pin_sandbox_process();
    // With its sandbox process gone, `runsc run` removes the container's state
    // and cgroup itself, quickly: the sandbox process is its own child.
    if (!wait_exit(supervisor_, 0)) kill_sandbox();
    if (!wait_exit(supervisor_, kStopTimeoutMs)) ::kill(supervisor_.pid, SIGKILL);
    int st = wait_child(supervisor_);
    supervisor_cleaned_up = WIFEXITED(st) || (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL);
  }
  // Once destroyed, nothing of the sandbox runs on the host: its process may
  // still be exiting (re-parented to init after a crashed supervisor).
  if (sandbox_pidfd_) {
    pollfd exited{sandbox_pidfd_.get(), POLLIN, 0};
    while (::poll(&exited, 1, kStopTimeoutMs) < 0 && errno == EINTR) {
    }
  }
  JobCgroup cgroup(cgroups_path_for(id_));
  if (supervisor_cleaned_up && !cgroup.exists()) {
    std::error_code ec;
    fs::remove_all(bundle_, ec);
    return;
  }
  destroy(command_, id_, bundle_);  // the slow, thorough way
}

void RunscSandbox::kill_sandbox() {
  if (sandbox_pidfd_ && ::syscall(SYS_pidfd_send_signal, sandbox_pidfd_.get(), SIGKILL, nullptr, 0) == 0) return;
  (void)run_capture(command_.argv({"kill", "--all", id_, "KILL"}), 1 << 16, kControlTimeout);
}

std::vector<std::string> RunscSandbox::destroy(const RunscCommand& command, const std::string& id,
                                               const std::string& bundle) {
  std::vector<std::string> errors;
  auto known = [&] {
    auto state = run_capture(command.argv({"state", id}), 1 << 20, kControlTimeout);
    return state && state->ok();
  };
  if (known()) {
    // Killing every process lets a still-running `runsc run` (the supervisor of a
    // crashed owner) tear the sandbox down itself, which is fast; `delete --force`
    // waits for processes re-parented to pid 1, which some hosts reap slowly.
    auto killed = run_capture(command.argv({"kill", "--all", id, "KILL"}), 1 << 16, kControlTimeout);
    for (int i = 0; i < 30 && killed && killed->ok() && known(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int attempt = 0; attempt < 2 && known(); ++attempt) {
      auto deleted = run_capture(command.argv({"delete", "--force", id}), 1 << 16, kControlTimeout);
      if (!deleted) errors.push_back(deleted.error());
    }
    if (known()) errors.push_back("runsc could not delete " + id);
  }
  // `runsc delete` returns before killed processes re-parented to init are
  // reaped; the sandbox is destroyed once none of them is left.
  if (!wait_processes_gone(id, kGoneTimeoutMs)) errors.push_back("processes of " + id + " are still running");
  // runsc removes its cgroup when the sandbox ends cleanly; not after a crash.
  JobCgroup cgroup(cgroups_path_for(id));
  for (int i = 0; i < 20 && !cgroup.remove(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its last processes are exiting
  }
  if (cgroup.exists()) errors.push_back("cgroup " + cgroup.path() + " could not be removed");
  std::error_code ec;
  fs::remove_all(bundle, ec);
  if (ec) errors.push_back("cannot remove " + bundle + ": " + ec.message());
  return errors;
}

void RunscSandbox::mark_dead(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (!dead_.exchange(true)) dead_reason_ = reason;
}

std::string RunscSandbox::dead_reason() const {
  std::lock_guard lock(mutex_);
  return dead_reason_;
}

void RunscSandbox::kill() {
  killed_ = true;
  mark_dead("the job was cancelled");
  // Ending the sandbox makes running `runsc exec`s return; their callers see kKilled.
  kill_sandbox();
}

void RunscSandbox::kill_step(const std::string& internal_pid_file) {
  // runsc writes the exec'd process's pid (in the sandbox's pid namespace) when it
  // starts; a timeout that hits before that has nothing to kill yet.
  int root = 0;
  for (int attempt = 0; attempt < 50 && root <= 0; ++attempt) {
    root = std::atoi(read_text_file(internal_pid_file, 32).c_str());
    if (root <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (root <= 0) return;
  // An exec'd process leads its own process group (and session): killing the
  // group from inside stops the step and everything it started, at once, even
  // children already re-parented to init. Only daemons that left the group
  // (setsid) survive until the sandbox ends.
  LogBudget quiet(4096);
  // Bounded: a sandbox that no longer answers is stopped instead.
  ExecRequest request{{"/bin/sh", "-c", "kill -9 -\"$1\"", "sh", std::to_string(root)},
                      {},
                      "/",
                      std::chrono::duration_cast<std::chrono::milliseconds>(kControlTimeout)};
  const ExitStatus killed = run(request, Io{}, quiet, [](const OutputLine&) {}, OnTimeout::kStopSandbox);
  if (!killed.success() && !dead_) kill_process_tree(root);
}

void RunscSandbox::kill_process_tree(int root) {
  auto ps = run_capture(command_.argv({"ps", id_}), 1 << 20, kControlTimeout);
  if (!ps || !ps->ok()) return;
  auto parents = parse_ps(ps->out);
  // The step's process and all its descendants, found before any dies (a dead
  // parent's children are re-parented to init and would be lost).
  std::set<int> tree{root};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : parents) {
      if (tree.contains(ppid) && tree.insert(pid).second) grew = true;
    }
  }
  // Deepest first: in runsc 20240729 a process re-parented to init no longer
  // receives `runsc kill --pid` (seen here), so no parent may die before its children.
  auto depth = [&parents, root](int pid) {
    int d = 0;
    for (; pid != root && parents.contains(pid) && d < 1000; ++d) pid = parents.at(pid);
    return d;
  };
  std::vector<std::pair<int, int>> order;  // (depth, pid)
  for (int pid : tree) order.emplace_back(depth(pid), pid);
  std::sort(order.rbegin(), order.rend());
  for (const auto& [d, pid] : order) {
    (void)run_capture(command_.argv({"kill", "--pid", std::to_string(pid), id_, "KILL"}), 1 << 16, kControlTimeout);
  }
}

ExitStatus RunscSandbox::exec(const ExecRequest& request, const LineCallback& on_line) {
  return run(request, Io{}, budget_, on_line);
}

ExitStatus RunscSandbox::exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) {
  io.captured.assign(io.capture_count, std::string());
  Io fds;
  std::optional<Fd> input;
  if (io.stdin_data) {
    auto memfd = make_memfd("sandci-exec-stdin");
    if (!memfd) return status(ExitKind::kFailed, memfd.error());
    const std::string& data = *io.stdin_data;
    for (std::size_t off = 0; off < data.size();) {
      ssize_t n = ::write(memfd->get(), data.data() + off, data.size() - off);
      if (n <= 0) return status(ExitKind::kFailed, "cannot buffer the command's stdin");
      off += static_cast<std::size_t>(n);
    }
    ::lseek(memfd->get(), 0, SEEK_SET);
    input = std::move(*memfd);
    fds.stdin_fd = input->get();
  }
  // Memory files, not pipes: the command writes them after its main work, when
  // nobody would be reading a pipe, and reading one back is a bounded pread.
  std::vector<Fd> captures;
  for (std::size_t i = 0; i < io.capture_count; ++i) {
    auto memfd = make_memfd("sandci-exec-capture");
    if (!memfd) return status(ExitKind::kFailed, memfd.error());
    fds.extra_fds.push_back(memfd->get());
    captures.push_back(std::move(*memfd));
  }
  ExitStatus st = run(request, fds, budget_, on_line);
  const std::uint64_t keep = io.capture_max_bytes + 1;
  for (std::size_t i = 0; i < captures.size(); ++i) {
    off_t size = ::lseek(captures[i].get(), 0, SEEK_END);
    if (size <= 0) continue;
    std::string& out = io.captured[i];
    out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(size), keep)));
    ssize_t n = ::pread(captures[i].get(), out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return st;
}

ExitStatus RunscSandbox::run(const ExecRequest& request, const Io& io, LogBudget& budget,
                             const LineCallback& on_line, OnTimeout on_timeout) {
  if (killed_) return status(ExitKind::kKilled, "the job was cancelled");
  if (dead_) return status(ExitKind::kFailed, "the sandbox is gone: " + dead_reason());
  if (request.argv.empty()) return status(ExitKind::kFailed, "nothing to run: empty command");

  const std::string n = std::to_string(++exec_counter_);
  const std::string process_file = bundle_ + "/exec-" + n + ".json";
  const std::string pid_file = bundle_ + "/exec-" + n + ".pid";
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      ::unlink(a.c_str());
      ::unlink(b.c_str());
    }
  } cleanup{process_file, pid_file};
  if (!write_text_file(process_file, make_process(spec_, request).dump())) {
    return status(ExitKind::kFailed, "cannot write " + process_file);
  }

  auto out = make_pipe();
  auto err = make_pipe();
  auto ctl = make_pipe();  // runsc's own messages, kept apart from the job's stderr
  if (!out || !err || !ctl) return status(ExitKind::kFailed, "cannot create pipes");
  const int guest_out = io.stdout_fd >= 0 ? io.stdout_fd : out->write.get();

  const std::uint64_t oom_before = cgroup_.oom_kills();
  const std::uint64_t pids_before = cgroup_.pids_limit_hits();

  // The job's stdout/stderr are handed to the sandbox as fds 1 and 2 directly
  // (no copy through runsc); runsc exec's own stderr is a separate pipe.
  SpawnRequest spawn_request{
      command_.argv({"exec", "--process", process_file, "--internal-pid-file", pid_file, "--pass-fd", "3:1",
                     "--pass-fd", "4:2", id_}),
      io.stdin_fd,
      -1,
      ctl->write.get(),
      {{guest_out, 3}, {err->write.get(), 4}}};
  // Extra descriptors: the host's 5, 6, ... are the command's 3, 4, ...
  for (std::size_t i = 0; i < io.extra_fds.size(); ++i) {
    const int host_fd = static_cast<int>(5 + i), guest_fd = static_cast<int>(3 + i);
    spawn_request.argv.insert(spawn_request.argv.end() - 1,
                              {"--pass-fd", std::to_string(host_fd) + ":" + std::to_string(guest_fd)});
    spawn_request.extra_fds.push_back({io.extra_fds[i], host_fd});
  }
  auto child = spawn(spawn_request);
  out->write.reset();
  err->write.reset();
  ctl->write.reset();
  if (!child) return status(ExitKind::kFailed, child.error());
  if (io.stdout_fd >= 0) out->read.reset();

  LineSplitter out_lines(Stream::kStdout, budget, on_line);
  LineSplitter err_lines(Stream::kStderr, budget, on_line);
  std::string runsc_err;
  auto keep_runsc_err = [&runsc_err](std::string_view s) {
    if (runsc_err.size() < 64 * 1024) runsc_err.append(s);
  };
  struct Source {
    Fd* fd;
    std::function<void(std::string_view)> sink;
  };
  Source sources[3] = {{&out->read, [&](std::string_view s) { out_lines.feed(s); }},
                       {&err->read, [&](std::string_view s) { err_lines.feed(s); }},
                       {&ctl->read, keep_runsc_err}};
  for (auto& s : sources) {
    if (*s.fd) set_nonblocking(s.fd->get());
  }

  const bool has_deadline = request.timeout.count() > 0;
  const auto deadline = Clock::now() + request.timeout;
  bool timed_out = false, escalated = false, exited = false, forced = false;
  std::uint64_t pids_seen = pids_before, oom_seen = oom_before;
  Clock::time_point escalate_at{}, dead_at{};

  while (!exited) {
    std::vector<pollfd> fds;
    for (auto& s : sources) fds.push_back({*s.fd ? s.fd->get() : -1, POLLIN, 0});
    fds.push_back({child->pidfd.get(), POLLIN, 0});
    int wait_ms = kSampleMs;
    auto now = Clock::now();
    auto until = [&](Clock::time_point t) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
      wait_ms = wait_ms < 0 ? static_cast<int>(std::max<long long>(ms, 0))
                            : std::min(wait_ms, static_cast<int>(std::max<long long>(ms, 0)));
    };
    if (has_deadline && !timed_out) until(deadline);
    if (timed_out && !escalated) until(escalate_at);
    if (dead_at != Clock::time_point{} && !forced) until(dead_at + kDeadExecGrace);
    int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < 3; ++i) {
      if (fds[i].fd >= 0 && fds[i].revents != 0 && !read_some(fds[i].fd, sources[i].sink)) {
        sources[i].fd->reset();  // EOF
      }
    }
    exited = wait_exit(*child, 0);
    pids_seen = std::max(pids_seen, cgroup_.pids_limit_hits());
    oom_seen = std::max(oom_seen, cgroup_.oom_kills());
    now = Clock::now();
    if (!exited && has_deadline && !timed_out && now >= deadline) {
      timed_out = true;
      if (on_timeout == OnTimeout::kKillStep) {
        kill_step(pid_file);
        escalate_at = Clock::now() + kTreeKillGrace;
      } else {
        escalated = true;
        mark_dead(stopped_answering(request.timeout));
        kill_sandbox();
      }
    } else if (!exited && timed_out && !escalated && now >= escalate_at) {
      // The step's processes would not die (or escaped the tree): end the sandbox.
      escalated = true;
      mark_dead("a step timed out and its processes could not be stopped");
      kill_sandbox();
    }
    // Once the sandbox is dead (cancelled, stopped above, or by another thread),
    // runsc exec normally returns as soon as the sandbox process is gone; a wedged
    // sandbox that could not be killed would hold it for good, so after a grace
    // our own runsc process is killed instead.
    if (!exited && dead_ && dead_at == Clock::time_point{}) dead_at = Clock::now();
    if (!exited && !forced && dead_at != Clock::time_point{} && Clock::now() >= dead_at + kDeadExecGrace) {
      forced = true;
      ::kill(child->pid, SIGKILL);
    }
  }
  const int wait_status = wait_child(*child);

  // The command has exited, so what it wrote is already in the pipes. Read that,
  // but not forever: background processes it left may keep writing.
  for (auto& s : sources) {
    for (int i = 0; i < 256 && *s.fd; ++i) {
      pollfd p{s.fd->get(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      if (!read_some(s.fd->get(), s.sink)) s.fd->reset();
    }
  }
  out_lines.finish();
  err_lines.finish();

  // Classify. Order matters: our own actions first, then the cgroup's counters
  // (they tell a limit from an ordinary failure), then what runsc exec said.
  if (killed_) return status(ExitKind::kKilled, "the job was cancelled");
  if (timed_out && on_timeout == OnTimeout::kStopSandbox) {
    return status(ExitKind::kTimedOut, no_answer_after(request.timeout));
  }
  if (timed_out) {
    return status(ExitKind::kTimedOut,
                  "timed out after " + std::to_string(request.timeout.count()) + " ms and was killed");
  }
  if (forced) return status(ExitKind::kFailed, "the sandbox is gone: " + dead_reason());
  const int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  if (code != 0) {
    if (auto death = sandbox_death(pids_before, oom_before, pids_seen, oom_seen, runsc_err)) return *death;
  }
  if (!WIFEXITED(wait_status)) {
    return status(ExitKind::kFailed, "runsc exec ended by signal " + std::to_string(WTERMSIG(wait_status)));
  }
  // runsc exits 128 when it could not run or wait for the command, and says why
  // on its own stderr; the job's stderr is a different pipe.
  if (code == 128 && !runsc_err.empty()) {
    return status(ExitKind::kFailed, "runsc: " + first_lines(runsc_err), code);
  }
  if (code > 128 && code < 128 + NSIG) {
    return status(ExitKind::kSignaled, "killed by signal " + std::to_string(code - 128), code, code - 128);
  }
  return status(ExitKind::kExited, "exit code " + std::to_string(code), code);
}

std::optional<ExitStatus> RunscSandbox::sandbox_death(std::uint64_t pids_before, std::uint64_t oom_before,
                                                      std::uint64_t pids_seen, std::uint64_t oom_seen,
                                                      const std::string& runsc_err) {
  const std::string pids_detail = "process limit reached (" + std::to_string(spec_.limits.pids) +
                                  " host processes); the sandbox was stopped";
  const std::string oom_detail = "out of memory: the limit of " + std::to_string(spec_.limits.memory_bytes >> 20) +
                                 " MiB was reached and the kernel killed the job";
  pids_seen = std::max(pids_seen, cgroup_.pids_limit_hits());
  oom_seen = std::max(oom_seen, cgroup_.oom_kills());
  if (pids_seen > pids_before) {
    mark_dead(pids_detail);
    return status(ExitKind::kPidsLimit, pids_detail);
  }
  if (oom_seen > oom_before) {
    if (wait_exit(supervisor_, 0)) mark_dead(oom_detail);
    return status(ExitKind::kOutOfMemory, oom_detail);
  }
  // runsc exec failing may mean the sandbox itself died. Its cgroup (and the
  // counters) may be gone already; then `runsc run`'s exit tells: 2 when the
  // sentry could not create a process (pids limit), SIGKILL when the OOM killer
  // chose the sentry.
  // Only wait for that when runsc lost its connection to the sandbox, not when
  // it merely refused the command (a missing program, say).
  const bool lost = runsc_err.find("EOF") != std::string::npos ||
                    runsc_err.find("connection re") != std::string::npos;
  if (!wait_exit(supervisor_, lost ? 2000 : 0)) return std::nullopt;
  siginfo_t info{};
  ::waitid(P_PID, supervisor_.pid, &info, WEXITED | WNOHANG | WNOWAIT);
  if (info.si_code == CLD_EXITED && info.si_status == 2) {
    mark_dead(pids_detail);
    return status(ExitKind::kPidsLimit, pids_detail + " (runsc exited 2)");
  }
  if ((info.si_code == CLD_KILLED && info.si_status == SIGKILL) ||
      (info.si_code == CLD_EXITED && info.si_status == 137)) {
    mark_dead(oom_detail);
    return status(ExitKind::kOutOfMemory, oom_detail + " (the sandbox was killed)");
  }
  std::string detail = "the sandbox stopped unexpectedly (runsc " +
                       std::string(info.si_code == CLD_EXITED ? "exit code " : "signal ") +
                       std::to_string(info.si_status) + ")";
  mark_dead(detail);
  return status(ExitKind::kFailed, detail);
}

std::expected<void, SandboxError> RunscSandbox::run_helper(const std::vector<std::string>& argv, const Io& io,
                                                           const std::string& what, std::chrono::milliseconds bound) {
  LogBudget budget(kHelperStderrBytes);
  std::string messages;
  LineCallback keep = collect_messages(messages);
  ExecRequest request{argv, {}, "/", bound};
  return helper_outcome(what, run(request, io, budget, keep, OnTimeout::kStopSandbox), messages);
}

std::expected<void, SandboxError> RunscSandbox::write_file(const std::string& container_path,
                                                           const std::string& content, int mode) {
  auto memfd = make_memfd("sandci-write-file");
  if (!memfd) return std::unexpected(SandboxError{memfd.error()});
  for (std::size_t off = 0; off < content.size();) {
    ssize_t n = ::write(memfd->get(), content.data() + off, content.size() - off);
    if (n <= 0) return std::unexpected(SandboxError{"cannot buffer the content of " + container_path});
    off += static_cast<std::size_t>(n);
  }
  ::lseek(memfd->get(), 0, SEEK_SET);
  char mode_text[16];
  std::snprintf(mode_text, sizeof mode_text, "%o", mode & 07777);
  return run_helper({"/bin/sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod \"$2\" \"$1\"",
                     "sh", container_path, mode_text},
                    Io{memfd->get(), -1, {}}, "write_file " + container_path, bounds_.file);
}

std::expected<std::string, SandboxError> RunscSandbox::read_file(const std::string& container_path,
                                                                 std::uint64_t max_bytes) {
  auto memfd = make_memfd("sandci-read-file");
  if (!memfd) return std::unexpected(SandboxError{memfd.error()});
  // head stops one byte past the limit: enough to tell "too big" without
  // copying a huge file out.
  auto done = run_helper({"/bin/sh", "-c", "test -f \"$1\" && head -c \"$2\" -- \"$1\"", "sh", container_path,
                          std::to_string(max_bytes + 1)},
                         Io{-1, memfd->get(), {}}, "read_file " + container_path, bounds_.file);
  if (!done) return std::unexpected(done.error());
  off_t size = ::lseek(memfd->get(), 0, SEEK_END);
  if (size < 0) return std::unexpected(SandboxError{"cannot read back " + container_path});
  if (static_cast<std::uint64_t>(size) > max_bytes) {
    return std::unexpected(
        SandboxError{container_path + " is larger than " + std::to_string(max_bytes) + " bytes"});
  }
  std::string content(static_cast<std::size_t>(size), '\0');
  if (size > 0 && ::pread(memfd->get(), content.data(), content.size(), 0) != size) {
    return std::unexpected(SandboxError{"cannot read back " + container_path});
  }
  return content;
}

std::expected<void, SandboxError> RunscSandbox::copy_out(const std::vector<std::string>& container_paths,
                                                         const std::string& host_dir) {
  if (container_paths.empty()) return {};
  std::vector<std::string> argv{"tar", "-C", "/", "-cf", "-", "--"};
  for (const auto& p : container_paths) {
    if (p.empty() || p[0] != '/') return std::unexpected(SandboxError{"copy_out: not an absolute path: " + p});
    argv.push_back(p == "/" ? "." : p.substr(1));
  }
  std::error_code ec;
  fs::create_directories(host_dir, ec);
  if (ec) return std::unexpected(SandboxError{"copy_out: cannot create " + host_dir + ": " + ec.message()});
  // GNU tar refuses members that climb out with "..", strips leading "/", and
  // extracts symlinks pointing outside as placeholders, so a hostile archive
  // cannot write outside host_dir. Owners and modes from inside are not trusted.
  return transfer({"tar", "-C", host_dir, "-xf", "-", "--no-same-owner", "--no-same-permissions"}, argv,
                  Direction::kOut, "copy_out to " + host_dir);
}

std::expected<void, SandboxError> RunscSandbox::copy_in(const std::string& host_dir,
                                                        const std::string& container_dir) {
  if (container_dir.empty() || container_dir[0] != '/') {
    return std::unexpected(SandboxError{"copy_in: not an absolute path: " + container_dir});
  }
  if (!fs::is_directory(host_dir)) return std::unexpected(SandboxError{"copy_in: not a folder: " + host_dir});
  return transfer({"tar", "-C", host_dir, "-cf", "-", "."},
                  {"/bin/sh", "-c", "mkdir -p \"$1\" && exec tar -xf - --no-same-owner -C \"$1\"", "sh",
                   container_dir},
                  Direction::kIn, "copy_in to " + container_dir);
}

std::expected<void, SandboxError> RunscSandbox::transfer(const std::vector<std::string>& host_argv,
                                                         const std::vector<std::string>& guest_argv,
                                                         Direction direction, const std::string& what) {
  auto pipe = make_pipe();
  auto host_err = make_memfd("sandci-tar-stderr");
  if (!pipe || !host_err) return std::unexpected(SandboxError{what + ": cannot create a pipe"});
  const bool out = direction == Direction::kOut;
  SpawnRequest host_request{host_argv, out ? pipe->read.get() : -1, out ? -1 : pipe->write.get(),
                            host_err->get(), {}};
  auto host = spawn(host_request);
  // Only the two tars may hold the pipe, or neither would ever see its end.
  (out ? pipe->read : pipe->write).reset();
  if (!host) return std::unexpected(SandboxError{what + ": " + host.error()});
  auto guest = run_helper(guest_argv, out ? Io{-1, pipe->write.get(), {}} : Io{pipe->read.get(), -1, {}}, what,
                          bounds_.copy);
  pipe->read.reset();
  pipe->write.reset();
  // With the guest side failed, a sandbox that could not be killed may still
  // hold the pipe's other end: the host tar would wait on it for good.
  if (!guest) ::kill(host->pid, SIGKILL);
  const int host_status = wait_child(*host);
  if (!guest) return guest;
  if (!WIFEXITED(host_status) || WEXITSTATUS(host_status) != 0) {
    std::string message(4096, '\0');
    ssize_t n = ::pread(host_err->get(), message.data(), message.size(), 0);
    message.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return std::unexpected(SandboxError{what + ": host tar failed: " + first_lines(message)});
  }
  return {};
}

}  // namespace sandci::sandbox
