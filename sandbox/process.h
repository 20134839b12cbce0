#pragma once
// Minimal child-process plumbing for driving runsc and tar: spawn with chosen
// file descriptors, wait, capture small outputs. Every descriptor this file
// creates is close-on-exec, so concurrent spawns from other threads never
// inherit (and hold open) each other's pipes.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sandci::sandbox {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);
  int release() { return std::exchange(fd_, -1); }  // the caller owns it now

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};
std::expected<Pipe, std::string> make_pipe();
// An anonymous in-memory file (for small payloads passed as stdin or stdout).
std::expected<Fd, std::string> make_memfd(const char* name);

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  int stdin_fd = -1;  // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
  // (descriptor here, descriptor number in the child), for fds beyond 0-2.
  std::vector<std::pair<int, int>> extra_fds;
  bool new_session = false;  // setsid: out of our terminal's signals (Ctrl-C)
  // The child gets SIGKILL when this process dies, however it dies (even by
  // SIGKILL): PR_SET_PDEATHSIG, set between fork and exec. Such children are
  // forked by one thread that lives as long as the process, because the kernel
  // sends the signal when the forking *thread* exits, not the process.
  bool die_with_parent = false;
};

// A started child. Not copyable; the destructor does NOT wait: call wait().
struct Child {
  pid_t pid = -1;
  Fd pidfd;  // readable once the child has exited
};

std::expected<Child, std::string> spawn(const SpawnRequest& request);
// Waits (blocking) and returns the raw wait status.
int wait_child(Child& child);
// Waits at most timeout_ms (-1: forever); true if the child has exited (it is
// not reaped: call wait_child).
bool wait_exit(const Child& child, int timeout_ms);

struct RunResult {
  int status = 0;  // raw wait status
  std::string out, err;
  bool ok() const;  // exited with 0
  // "exit code N" / "signal N" plus the first line of stderr, for error messages.
  std::string describe() const;
};
// Runs a short command to completion, keeping at most max_capture bytes of each
// stream. Only for commands that do not leave children holding their stdio.
// With a timeout above zero, a command still running after it is killed
// (SIGKILL), reaped, and the result is an error saying it timed out: a
// command talking to a wedged sandbox never blocks its caller for good.
std::expected<RunResult, std::string> run_capture(const std::vector<std::string>& argv,
                                                  std::size_t max_capture = 1 << 20,
                                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

std::string join_args(const std::vector<std::string>& argv);

// Host processes other than this one whose command line contains `needle` (a
// sandbox id: runsc and the sandbox's own processes name it or its bundle).
std::vector<pid_t> host_processes_mentioning(const std::string& needle);

// The first `limit` bytes of a /proc file (or any small file), nullopt if it
// cannot be opened or read. A process's files fail with ESRCH once it is reaped,
// even after a successful open: std::ifstream turns that into an exception when
// read through istreambuf_iterator, which is why /proc is read with this instead.
std::optional<std::string> read_proc_file(const std::string& path, std::size_t limit = 1 << 20);
// The rest of open file `fd`, at most `limit` bytes; nullopt on a read error.
std::optional<std::string> read_to_end(int fd, std::size_t limit = 1 << 20);

}  // namespace sandci::sandbox
