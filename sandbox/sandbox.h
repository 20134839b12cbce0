#pragma once
// The seam between the runner and the isolation technology. A Sandbox is one
// job's container: started once, then each step is exec'd into it, so that the
// job's steps share a filesystem as they do in GitHub Actions. Backends: runsc
// (direct OCI, default) and Docker (docker_backend.h). Everything here is thread-safe unless noted.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sandci::sandbox {

struct Mount {
  std::string host_path;
  std::string container_path;
  bool read_only = false;
};

struct ResourceLimits {
  std::uint64_t memory_bytes = 4ull << 30;
  double cpus = 2.0;
  int pids = 4096;  // host processes of the sandbox (sentry + stubs), not guest ones
  std::uint64_t log_bytes = 64ull << 20;  // per sandbox; past it output is dropped with a notice
};

struct SandboxSpec {
  std::string rootfs;  // absolute path of the image's root filesystem, never written
  // Engine backends (Docker): the engine's image reference ("node:20"); empty:
  // the backend's default image. The runsc backend ignores it.
  std::string image;
  std::vector<std::string> env;  // "NAME=VALUE", the image's Env merged in by the caller
  std::string working_dir = "/workspace";
  std::uint32_t uid = 0, gid = 0;
  // Extra private in-memory folders, writable by any user (mode 1777, as /tmp),
  // mounted before `mounts` so that a mount may go inside one.
  std::vector<std::string> tmpfs;
  std::vector<Mount> mounts;  // e.g. the checkout at /workspace
  ResourceLimits limits;
  bool network = false;  // false: no network at all (--network=none)
  // A network namespace the caller made for this job (sandbox/job_network.h),
  // e.g. "/run/netns/sandci-123-1-job": the sandbox's only network is what that
  // namespace holds. Empty (the default): no network at all. The runsc backend
  // only; `network` stays false with it.
  std::string network_namespace;
  std::string name_hint;  // part of the container id, for people reading `runsc list`
};

enum class Stream { kStdout, kStderr };

struct OutputLine {
  Stream stream;
  std::chrono::system_clock::time_point time;
  std::string text;  // without the trailing newline
};

using LineCallback = std::function<void(const OutputLine&)>;

enum class ExitKind {
  kExited,       // exit code in `code`
  kSignaled,     // signal in `signal`
  kTimedOut,     // the exec's timeout passed; it was killed
  kOutOfMemory,  // the sandbox hit its memory limit
  kPidsLimit,    // the sandbox hit its process limit ("process limit reached")
  kKilled,       // kill() was called (cancellation)
  kFailed,       // the sandbox itself failed (runsc error); see detail
};

// "exited", "signaled", "timed out", "out of memory", "process limit reached",
// "killed", "failed".
const char* to_string(ExitKind kind);

struct ExitStatus {
  ExitKind kind = ExitKind::kExited;
  int code = 0;    // exit code; for kSignaled the shell-style 128 + signal
  int signal = 0;  // kSignaled only
  std::string detail;  // a sentence for people
  bool success() const { return kind == ExitKind::kExited && code == 0; }
};

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // added to the sandbox env
  std::string working_dir;       // empty: the spec's
  std::chrono::milliseconds timeout{0};  // 0: none
};

struct SandboxError {
  std::string message;
};

// Extra plumbing for one exec, for callers that hand a command its input and
// collect files it writes without a second `runsc exec` (the runner's steps).
struct ExecIo {
  // Given to the command on stdin; without it stdin is /dev/null.
  std::optional<std::string> stdin_data;
  // Each entry is a descriptor 3, 4, ... open in the command for writing; after
  // the command exits, what was written to it, at most `capture_max_bytes` + 1
  // bytes (one more than the limit, so a caller can tell "too big"). The host
  // never holds more than that, whatever the command writes.
  std::size_t capture_count = 0;
  std::uint64_t capture_max_bytes = 4 << 20;
  std::vector<std::string> captured;  // filled by exec, capture_count entries
};

// How long a sandbox took to come up, by phase (for `sandci run --timings`).
struct StartTimings {
  std::chrono::nanoseconds bundle{0};  // writing the OCI bundle
  std::chrono::nanoseconds start{0};   // from `runsc run` to the init saying "ready"
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;  // implementations destroy the container
  virtual const std::string& id() const = 0;
  // Runs a command inside the sandbox, streaming its output line by line (on the
  // calling thread, as it arrives, each line stamped with the time it was read).
  // Returns when the command has exited; output still written afterwards by
  // processes it left in the background is dropped. Output past the sandbox's
  // log_bytes budget is dropped after a single notice line on kStderr.
  virtual ExitStatus exec(const ExecRequest& request, const LineCallback& on_line) = 0;
  // The same, with stdin data and captured descriptors (see ExecIo). A capture
  // that could not be set up fails the exec (kFailed) before anything runs.
  virtual ExitStatus exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) = 0;
  // Time spent creating this sandbox.
  virtual StartTimings start_timings() const { return {}; }
  // Writes `content` to a file inside the sandbox (step scripts, event payload).
  virtual std::expected<void, SandboxError> write_file(const std::string& container_path,
                                                       const std::string& content,
                                                       int mode = 0644) = 0;
  // Fails if the file is larger than max_bytes.
  virtual std::expected<std::string, SandboxError> read_file(const std::string& container_path,
                                                             std::uint64_t max_bytes) = 0;
  // Copies a tar stream of files out of / into the sandbox (artifacts).
  // copy_out: each absolute container path lands at host_dir/<path without leading />.
  // copy_in: the contents of host_dir land inside container_dir (created if missing).
  // Both need sh and tar in the image.
  virtual std::expected<void, SandboxError> copy_out(const std::vector<std::string>& container_paths,
                                                     const std::string& host_dir) = 0;
  virtual std::expected<void, SandboxError> copy_in(const std::string& host_dir,
                                                    const std::string& container_dir) = 0;
  // Stops everything inside; running execs return kKilled, later ones too.
  // Safe from any thread. The destructor still has to run to free resources.
  virtual void kill() = 0;
};

class SandboxBackend {
 public:
  virtual ~SandboxBackend() = default;
  virtual std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) = 0;
};

}  // namespace sandci::sandbox
