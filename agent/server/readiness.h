#pragma once
// GET /readyz: whether the agent can take work now, as a load balancer or an
// operator asks it. /healthz says the process answers; this says the parts a run
// needs work: the run store answers and its folder takes a durable write, runsc
// starts, and the state folder's file system has room.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/store/run_store.h"

namespace sandci::agent::server {

struct ReadinessCheck {
  std::string name;    // "store", "runsc", "disk"
  bool ok = false;
  std::string detail;  // what was seen, for people: "12.3 GiB free (limit 1.0 GiB)"
};

struct ReadinessOptions {
  std::filesystem::path state_dir;
  std::uint64_t min_free_bytes = 1ull << 30;
  // Runs `runsc --version`; its error text, or nullopt when runsc answered. A seam:
  // tests give a runsc that fails.
  std::function<std::optional<std::string>()> probe_runsc;
  // runsc is probed at most this often (a probe starts a process).
  std::chrono::seconds runsc_probe_interval{30};
};

class Readiness {
 public:
  Readiness(store::RunStore& store, ReadinessOptions options);

  // Every check, in a fixed order; thread-safe.
  std::vector<ReadinessCheck> check();

 private:
  ReadinessCheck check_store();
  ReadinessCheck check_runsc();
  ReadinessCheck check_disk() const;

  store::RunStore& store_;
  ReadinessOptions options_;
  std::mutex runsc_mutex_;
  std::optional<std::chrono::steady_clock::time_point> runsc_checked_;
  ReadinessCheck runsc_last_;
};

// `runsc --version` through the sandbox library's tool runner.
std::optional<std::string> probe_runsc_binary(const std::string& runsc);

}  // namespace sandci::agent::server
