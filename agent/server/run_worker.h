#pragma once
// The daemon's queue worker: claims queued runs from the store and runs each one
// exactly as `sandci run` does (runner/run_engine), from a fresh checkout of the
// run's commit. Several runs go on at once; their jobs share the agent's capacity
// through JobSlots, so one big run cannot starve the others. While a run goes on
// its claim's lease is renewed; a run whose lease is lost, that is superseded by a
// newer push, or that an admin cancels is stopped.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <expected>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/runner/cache_store.h"
#include "agent/runner/job_slots.h"
#include "agent/runner/remote_actions.h"
#include "agent/runner/mirror_checkout.h"
#include "agent/runner/prestarted_sandbox.h"
#include "agent/runner/run_engine.h"
#include "agent/runner/secret_masker.h"
#include "agent/server/concurrency_groups.h"
#include "agent/server/metrics.h"
#include "agent/store/run_store.h"
#include "git/mirror_cache.h"
#include "sandbox/image_store.h"
#include "sandbox/sandbox.h"

namespace sandci::agent::server {

struct WorkerOptions {
  std::string owner;  // this agent, as recorded on its claims
  std::size_t runs_at_once = 2;
  std::chrono::milliseconds lease{std::chrono::seconds(60)};
  std::chrono::milliseconds idle_poll{std::chrono::seconds(2)};  // a wake() is the fast path
};

class RunWorker {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch
  RunWorker(config::ConfigRef config, store::RunStore& store, sandbox::SandboxBackend& backend,
            sandbox::ImageStore& images, JobSlots& slots, WorkerOptions options, Now now,
            std::function<void()> statuses_changed, Metrics* metrics = nullptr);
  ~RunWorker();  // drain(0)

  void start();
  // A run was queued: an idle worker claims it now rather than at its next poll.
  void wake();
  // Stops run `id` if this agent runs it (superseded, cancelled by an admin).
  void cancel_run(std::int64_t id, const std::string& why);
  // Claims nothing more; lets running runs go on for `grace`, then cancels them
  // and waits until every sandbox is gone.
  void drain(std::chrono::milliseconds grace);
  std::size_t active_runs() const;

 private:
  struct Active {
    std::atomic<bool> cancel{false};
    std::string why;  // guarded by the worker's mutex
    store::Claim claim;
  };

  void work_loop();
  void lease_loop();
  void process(const store::RunRecord& run, Active& active);
  std::expected<RunSource, std::string> check_out(const store::RunRecord& run, const config::RepositoryConfig& repo,
                                                  const std::filesystem::path& run_dir);
  RunEnvironment environment_for(const store::RunRecord& run, const config::RepositoryConfig& repo,
                                 const std::filesystem::path& run_dir, SecretMasker& masker);
  std::unique_ptr<PrestartedSandbox> prestart_first_job(const config::AgentConfig& config,
                                                        const store::RunRecord& run,
                                                        const config::RepositoryConfig& repo,
                                                        const std::filesystem::path& run_dir,
                                                        const nlohmann::json& payload);
  void record_action(const store::RunRecord& run, const ActionResolution& resolution);
  std::vector<std::string> enter_groups(const store::RunRecord& run, const PreparedRun& prepared,
                                        const RunSource& source, const RunTrigger& trigger,
                                        const RunEnvironment& env, Active& active);
  bool still_running(std::int64_t id);
  std::shared_ptr<Active> register_run(const store::RunRecord& run);
  void unregister_run(std::int64_t id);
  std::string cancel_reason(const Active& active) const;
  std::expected<RepositoryRemote, std::string> checkout_remote(const store::RunRecord& run,
                                                               const config::RepositoryConfig& repo,
                                                               std::string_view name) const;

  config::ConfigRef config_;  // a snapshot per piece of work: the agent reloads it on SIGHUP
  store::RunStore& store_;
  sandbox::SandboxBackend& backend_;
  sandbox::ImageStore& images_;
  JobSlots& slots_;
  WorkerOptions options_;
  Now now_;
  std::function<void()> statuses_changed_;
  Metrics* metrics_;
  git::MirrorCache mirrors_;
  ActionCache actions_;  // remote actions, shared by every run of this agent
  CacheStore cache_;  // actions/cache entries of every repository, under <state>/cache
  ConcurrencyGroups groups_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::map<std::int64_t, std::shared_ptr<Active>> active_;
  std::vector<std::thread> threads_;
  std::thread lease_thread_;
};

}  // namespace sandci::agent::server
