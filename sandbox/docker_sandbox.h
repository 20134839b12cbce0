#pragma once
// One job's container in the Docker engine (see docker_backend.h). Created by
// DockerBackend. Steps run through the exec API; files move through execs of sh
// and tar too, because with runsc the container's writes live inside gVisor's
// own overlay where the engine's archive API does not see them (the archive API
// is used only to seed the checkout before the container starts).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sandbox/docker_api.h"
#include "sandbox/helper_outcome.h"
#include "sandbox/job_cgroup.h"
#include "sandbox/line_splitter.h"
#include "sandbox/sandbox.h"

namespace sandci::sandbox {

class DockerSandbox final : public Sandbox {
 public:
  // Takes over a created (not yet started) container: seeds it, starts it.
  static std::expected<std::unique_ptr<DockerSandbox>, SandboxError> start(const DockerClient& client,
                                                                           std::string id, std::string cgroup,
                                                                           SandboxSpec spec,
                                                                           std::chrono::nanoseconds create_time);
  ~DockerSandbox() override;  // DELETE /containers/{id}?force=1, then the companion's

  // A container removed right after this one: the holder of its network
  // namespace (DockerBackend, egress), which must outlive the job's container.
  void remove_with(std::string container_id) { companion_ = std::move(container_id); }

  const std::string& id() const override { return id_; }
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line) override;
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) override;
  StartTimings start_timings() const override { return timings_; }
  std::expected<void, SandboxError> write_file(const std::string& container_path, const std::string& content,
                                               int mode) override;
  std::expected<std::string, SandboxError> read_file(const std::string& container_path,
                                                     std::uint64_t max_bytes) override;
  std::expected<void, SandboxError> copy_out(const std::vector<std::string>& container_paths,
                                             const std::string& host_dir) override;
  std::expected<void, SandboxError> copy_in(const std::string& host_dir,
                                            const std::string& container_dir) override;
  void kill() override;

  // How long write_file/read_file and copy_in/copy_out may take before the
  // container is taken for wedged (an exec into a container that stopped
  // answering never ends) and stopped; the helper then fails saying so.
  // Defaults as for runsc: 5 and 30 minutes (HelperBounds).
  void set_helper_bounds(std::chrono::milliseconds file, std::chrono::milliseconds copy) {
    bounds_ = HelperBounds{file, copy};
  }

  // Where the wrapper of an exec keeps its pid and captured descriptors (a
  // private folder on the container's /tmp tmpfs).
  static constexpr const char* kStateDir = "/tmp/.sandci";

 private:
  DockerSandbox(const DockerClient& client, std::string id, std::string cgroup, SandboxSpec spec);

  // How one exec's input and output are handled.
  struct Io {
    const std::string* stdin_data = nullptr;
    int stdin_fd = -1;  // instead of stdin_data: read until its end (a pipe from a host tar)
    // Raw stdout (no line splitting, no budget) when set.
    std::function<void(std::string_view)> raw_stdout;
    std::size_t capture_count = 0;
    std::uint64_t capture_max_bytes = 0;
    std::vector<std::string>* captured = nullptr;
  };
  // What run() does when the request's timeout passes: a step's processes are
  // killed (the container goes on); for sandci's own helpers, whose only reason
  // to be that late is a container that stopped answering, the container is stopped.
  enum class OnTimeout { kKillStep, kStopSandbox };
  ExitStatus run(const ExecRequest& request, const Io& io, LogBudget& budget, const LineCallback& on_line,
                 OnTimeout on_timeout = OnTimeout::kKillStep);
  std::expected<std::string, SandboxError> create_exec(const ExecRequest& request, bool attach_stdin,
                                                       const std::vector<std::string>& cmd);
  // A helper command (sh, tar) whose stderr matters only for errors, for at most `bound`.
  std::expected<void, SandboxError> run_helper(const std::vector<std::string>& argv, const Io& io,
                                               const std::string& what, std::chrono::milliseconds bound);
  // Reads and removes the wrapper's capture files into `captured`.
  void collect_captures(const std::string& tag, const Io& io);
  void kill_step(const std::string& tag);
  std::optional<ExitStatus> sandbox_death(std::uint64_t pids_before, std::uint64_t oom_before,
                                          std::uint64_t pids_seen, std::uint64_t oom_seen);
  std::expected<void, SandboxError> seed(const Mount& mount);
  void mark_dead(const std::string& reason);
  // POST /containers/{id}/kill (bounded): the engine ends every exec with it.
  void kill_container();
  std::string dead_reason() const;

  DockerClient client_;  // a copy: a sandbox may outlive its backend
  std::string id_;
  SandboxSpec spec_;
  JobCgroup cgroup_;
  LogBudget budget_;
  std::atomic<bool> killed_{false};
  std::atomic<bool> dead_{false};
  std::atomic<std::uint64_t> exec_counter_{0};
  mutable std::mutex mutex_;  // guards dead_reason_
  std::string dead_reason_;
  StartTimings timings_;
  std::string companion_;
  HelperBounds bounds_;
};

}  // namespace sandci::sandbox
