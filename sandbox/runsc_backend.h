#pragma once
// The gVisor backend: drives `runsc` directly as an OCI runtime (no daemon).
// Each sandbox is an OCI bundle under <state_dir>/bundles/<id> whose init
// process only keeps it alive; every step is a `runsc exec` into it. All runsc
// state lives under <state_dir>/runsc (runsc --root), so stale sandboxes left by
// a crash can be found and removed (reap_stale) without touching anyone else's.
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

struct RunscOptions {
  std::string runsc = "runsc";  // binary, looked up in PATH
  std::string state_dir;        // required; created if missing
  // Where the sandbox's writes go (runsc --overlay2): "all:memory" keeps every
  // write, to the root and to bind mounts alike, inside the sandbox's memory, so
  // nothing a job writes reaches the host. "all:dir=/abs" spills them to a file.
  std::string overlay = "all:memory";
  std::string platform;  // empty: runsc's default (systrap)
  // Extra global runsc flags (e.g. "--debug", "--debug-log=/dir/").
  std::vector<std::string> extra_flags;
  // open() checks that runsc runs (check_runsc) and reaps what crashed owners
  // left (reap_stale); false: the caller does both itself, say while its first
  // sandbox starts (both are safe beside this process's own starts and sandboxes:
  // only dead owners' are reaped).
  bool check_on_open = true;
};

struct ReapReport {
  int containers = 0;  // runsc containers of dead owners removed
  int bundles = 0;     // bundle folders removed
  int cgroups = 0;     // cgroups of dead creators' sandboxes removed that had no bundle left
  std::vector<std::string> errors;
};

class RunscBackend final : public SandboxBackend {
 public:
  // Creates the state folders, then check_runsc() and reap_stale() unless
  // options.check_on_open is false (what the reap did and what failed is kept in
  // startup_reap() for the caller to log).
  static std::expected<std::unique_ptr<RunscBackend>, SandboxError> open(RunscOptions options);
  const ReapReport& startup_reap() const { return startup_reap_; }

  // Whether runsc runs (`runsc --version`); the error names the binary.
  std::expected<void, SandboxError> check_runsc();

  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override;

  // Removes every sandbox under this state dir whose owning process is gone
  // (another live process's sandboxes are left alone), with its bundle and cgroup.
  // Processes still working on such a sandbox (a `runsc run` that outlived its
  // agent and is still creating it, its sandbox, gofer, execs) are SIGKILLed and
  // waited for first. Then removes the cgroups ("sandci-<id>", in any state dir)
  // of sandboxes whose creating process is gone and that have no bundle here,
  // killing what is left in them. Failures are listed in the report, never thrown.
  ReapReport reap_stale();

  // Where the cgroup hierarchies are mounted; for tests. Default /sys/fs/cgroup.
  void set_cgroup_root(std::string root) { cgroup_root_ = std::move(root); }

  const std::string& runsc_root() const { return root_; }
  const std::string& bundles_dir() const { return bundles_; }

 private:
  explicit RunscBackend(RunscOptions options);
  std::string new_id(const std::string& hint);
  static std::vector<std::string> netstack_workaround_prefix();
  void reap_into(ReapReport& report);
  void reap_orphan_cgroups(ReapReport& report);

  RunscOptions options_;
  ReapReport startup_reap_;
  std::string root_, bundles_;
  std::string cgroup_root_ = "/sys/fs/cgroup";
  std::atomic<std::uint64_t> counter_{0};
};

// runsc accepts [A-Za-z0-9_.+-]; keeps the hint short and readable.
std::string sanitize_id_part(const std::string& hint, std::size_t max_len = 24);

}  // namespace sandci::sandbox
