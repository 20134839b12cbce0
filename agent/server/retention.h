#pragma once
// Retention: finished runs' logs and artifacts (<state_dir>/runs/<id>) older than the
// configured age, or beyond the disk budget, are removed oldest first; their store rows
// are kept as a summary (marked expired) or deleted, as configured. A pass also
// compresses the logs of finished runs left plain (a crash between a run's end and its
// compression) and removes mirrors (<state_dir>/git) of repositories no longer
// configured, and remote actions' trees and mirrors (<state_dir>/actions) not used for
// retention.actions_days by any run, nor by an unfinished one at all
// (agent/runner/action_cache_pruning.h). What to remove is decided by pure functions
// (plan_retention, stale_mirrors, plan_action_pruning) so the rules are tested apart
// from the files.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/server/metrics.h"
#include "agent/store/run_store.h"

namespace sandci::agent::server {

struct RetentionPolicy {
  std::int64_t max_age_ms = 0;     // finished longer ago than this: removed
  std::uint64_t budget_bytes = 0;  // all runs' folders together, at most this
  bool keep_summary = true;        // rows stay (expired) rather than deleted
  std::int64_t actions_max_unused_ms = 0;  // action trees and mirrors unused longer: removed
};

RetentionPolicy retention_policy(const config::RetentionConfig& config);

// One run as the decision sees it.
struct RunUsage {
  std::int64_t id = 0;
  store::RunState state = store::RunState::queued;
  std::int64_t finished_ms = 0;  // created_ms for a run finished without a time
  std::uint64_t bytes = 0;       // its folder on disk
  bool expired = false;          // its files were removed before, its rows kept
};

enum class RemovalReason { age, budget };
std::string_view to_string(RemovalReason reason);

struct Removal {
  std::int64_t id = 0;
  RemovalReason reason = RemovalReason::age;
  std::uint64_t bytes = 0;
};

struct RetentionPlan {
  std::vector<Removal> removals;  // oldest finished first
  std::uint64_t bytes_before = 0, bytes_after = 0;
};

// What to remove: every finished run that finished more than max_age_ms before now_ms,
// then further finished runs, oldest first (by finished time, then id), until all runs'
// bytes fit the budget. A run that is not finished (queued, running) is never removed,
// though its bytes count. Runs already expired with nothing on disk are left alone when
// rows are kept as summaries; when rows are removed, old ones are removed too. A run with
// no bytes is never removed for the budget (it would free nothing).
RetentionPlan plan_retention(std::vector<RunUsage> runs, const RetentionPolicy& policy, std::int64_t now_ms);

// The mirror folder names (git::mirror_dir_name) still wanted: the clone URL of each
// configured repository and of every run of a configured repository in `runs`, and of
// every run not finished.
std::set<std::string> mirrors_in_use(const config::AgentConfig& config, const std::vector<store::RunSummary>& runs);

// The names in `present` (folders of the mirror cache) not in `in_use`, sorted. Dot
// entries (a mirror being built) are never stale.
std::vector<std::string> stale_mirrors(const std::vector<std::string>& present, const std::set<std::string>& in_use);

struct RetentionReport {
  std::size_t removed_runs = 0;  // runs whose folders were removed
  std::size_t expired_rows = 0, deleted_rows = 0;
  std::uint64_t freed_bytes = 0, kept_bytes = 0;
  std::size_t compressed_logs = 0;
  std::size_t removed_mirrors = 0;
  bool mirrors_deferred = false;  // stale mirrors kept this time: a run was running
  std::size_t removed_action_trees = 0, removed_action_mirrors = 0;
  std::size_t removed_action_temporaries = 0;  // trees a dead writer left half-written
  std::uint64_t action_freed_bytes = 0;
  bool actions_deferred = false;  // a run was resolving an action: looked at next pass
};

class Retention {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch
  // The policy is read from `config` now; the repositories (whose mirrors stay) at
  // each pass, as SIGHUP may change them.
  Retention(config::ConfigRef config, store::RunStore& store, Now now, Metrics* metrics = nullptr);
  ~Retention();
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  // One pass, now, on the calling thread. A store error ends it early (what was
  // removed by then stays removed); a file that cannot be removed is logged and its
  // run left as it was, to be tried again next pass.
  std::expected<RetentionReport, store::StoreError> run_pass();

  // A pass at once and then every interval_minutes, on a thread of its own.
  void start();
  void stop();

 private:
  std::uint64_t run_bytes(std::int64_t id) const;
  void remove_run(const Removal& removal, RetentionReport& report);
  void remove_stale_mirrors(const std::vector<store::RunSummary>& runs, RetentionReport& report);
  std::expected<void, store::StoreError> prune_actions(const std::vector<store::RunSummary>& runs,
                                                       RetentionReport& report);

  config::ConfigRef config_;  // the repositories of the moment: SIGHUP may change them
  store::RunStore& store_;
  Now now_;
  Metrics* metrics_;
  RetentionPolicy policy_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sandci::agent::server
