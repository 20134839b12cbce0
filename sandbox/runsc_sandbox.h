#pragma once
// One running gVisor sandbox (see runsc_backend.h). Created by RunscBackend.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/helper_outcome.h"
#include "sandbox/job_cgroup.h"
#include "sandbox/line_splitter.h"
#include "sandbox/process.h"
#include "sandbox/sandbox.h"

namespace sandci::sandbox {

// How to call runsc for one sandbox: the binary and its global flags.
struct RunscCommand {
  std::string runsc;
  std::vector<std::string> global_flags;  // --root=..., --network=none, ...
  // Put before `runsc ... run` only (the supervisor), e.g. the unshare that
  // works around gVisor issue 10704 for jobs with a network (runsc_backend.cc).
  std::vector<std::string> run_prefix;
  std::vector<std::string> argv(std::initializer_list<std::string> args) const;
};

class RunscSandbox final : public Sandbox {
 public:
  // Starts the sandbox whose bundle (config.json, owner) is already written.
  static std::expected<std::unique_ptr<RunscSandbox>, SandboxError> start(RunscCommand command,
                                                                           std::string id,
                                                                           std::string bundle,
                                                                           SandboxSpec spec);
  ~RunscSandbox() override;

  const std::string& id() const override { return id_; }
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line) override;
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) override;
  StartTimings start_timings() const override { return timings_; }
  // The backend measures the bundle it wrote before start().
  void set_bundle_time(std::chrono::nanoseconds bundle) { timings_.bundle = bundle; }
  std::expected<void, SandboxError> write_file(const std::string& container_path,
                                               const std::string& content, int mode) override;
  std::expected<std::string, SandboxError> read_file(const std::string& container_path,
                                                     std::uint64_t max_bytes) override;
  std::expected<void, SandboxError> copy_out(const std::vector<std::string>& container_paths,
                                             const std::string& host_dir) override;
  std::expected<void, SandboxError> copy_in(const std::string& host_dir,
                                            const std::string& container_dir) override;
  void kill() override;

  // How long write_file/read_file (small files) and copy_in/copy_out (a
  // checkout, artifacts: minutes are normal) may take before the sandbox is taken
  // for wedged (runsc exec blocks for good on a sandbox that stopped answering)
  // and stopped; the helper then fails saying so. Defaults: 5 and 30 minutes.
  void set_helper_bounds(std::chrono::milliseconds file, std::chrono::milliseconds copy) {
    bounds_ = HelperBounds{file, copy};
  }

  static std::string cgroups_path_for(const std::string& id) { return "/sandci-" + id; }
  // Removes a sandbox by id whatever state it is in: runsc container, host
  // processes (waited for until gone, bounded), cgroup, bundle folder. Every
  // runsc call it makes is bounded in time. Used by the destructor (after its
  // own, faster, shutdown) and by reap_stale.
  static std::vector<std::string> destroy(const RunscCommand& command, const std::string& id,
                                          const std::string& bundle);

 private:
  RunscSandbox(RunscCommand command, std::string id, std::string bundle, SandboxSpec spec);

  // Where a command's stdio goes; -1 fds mean: /dev/null for stdin, the line
  // callback for stdout.
  struct Io {
    int stdin_fd = -1;
    int stdout_fd = -1;
    std::vector<int> extra_fds;  // become the command's fds 3, 4, ...
  };
  // What run() does when the request's timeout passes: a step's processes are
  // killed (the sandbox goes on); for sandci's own helpers, whose only reason to
  // be that late is a sandbox that stopped answering, the sandbox is stopped.
  enum class OnTimeout { kKillStep, kStopSandbox };
  ExitStatus run(const ExecRequest& request, const Io& io, LogBudget& budget, const LineCallback& on_line,
                 OnTimeout on_timeout = OnTimeout::kKillStep);
  // Runs a helper command (tar, cat...) whose stderr is only wanted for errors,
  // for at most `bound`.
  std::expected<void, SandboxError> run_helper(const std::vector<std::string>& argv, const Io& io,
                                               const std::string& what, std::chrono::milliseconds bound);
  enum class Direction { kIn, kOut };
  // Pipes a tar stream between a host command and a command in the sandbox.
  std::expected<void, SandboxError> transfer(const std::vector<std::string>& host_argv,
                                             const std::vector<std::string>& guest_argv, Direction direction,
                                             const std::string& what);
  // Kills a timed-out exec's processes, leaving the sandbox running.
  void kill_step(const std::string& internal_pid_file);
  // Fallback for images without sh: `runsc kill --pid` on each descendant.
  void kill_process_tree(int root);
  // After a failed exec: why did the sandbox itself stop, if it did?
  std::optional<ExitStatus> sandbox_death(std::uint64_t pids_before, std::uint64_t oom_before,
                                          std::uint64_t pids_seen, std::uint64_t oom_seen, const std::string& runsc_err);
  void mark_dead(const std::string& reason);
  // Opens sandbox_pidfd_ from runsc's pid file if the process there is the
  // supervisor's child. Not thread-safe: start() and the destructor only.
  void pin_sandbox_process();
  // Stops the whole sandbox now (SIGKILL to its process, else `runsc kill --all`).
  void kill_sandbox();
  std::string dead_reason() const;

  RunscCommand command_;
  // The foreground `runsc run` (our child): it is the sandbox process's parent,
  // so it reaps it at once when the sandbox stops and then removes the runsc
  // state. A detached sandbox would be re-parented to pid 1 and `runsc delete`
  // waits until pid 1 reaps it, which is slow on some hosts (1.5 s measured).
  Child supervisor_;
  // The sandbox process (runsc-sandbox, the supervisor's child), pinned by a
  // pidfd: SIGKILL to it ends everything inside without starting a runsc process.
  Fd sandbox_pidfd_;
  std::string id_, bundle_;
  SandboxSpec spec_;
  JobCgroup cgroup_;
  LogBudget budget_;
  std::atomic<bool> killed_{false};
  std::atomic<bool> dead_{false};
  std::atomic<std::uint64_t> exec_counter_{0};
  mutable std::mutex mutex_;  // guards dead_reason_
  std::string dead_reason_;
  StartTimings timings_;
  HelperBounds bounds_;
};

}  // namespace sandci::sandbox
