#include "agent/server/retention.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "agent/runner/remote_actions.h"
#include "agent/server/log_files.h"
#include "agent/runner/folder_util.h"
#include "git/url.h"

namespace sandci::agent::server {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

// Holds the cross-process lock a fetch of the mirror takes (git::MirrorCache), so a
// mirror is never removed under a fetch; false when a fetch holds it now.
class MirrorLock {
 public:
  explicit MirrorLock(const fs::path& lock_file)
      : fd_(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    held_ = fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  }
  ~MirrorLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  MirrorLock(const MirrorLock&) = delete;
  MirrorLock& operator=(const MirrorLock&) = delete;
  bool held() const { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

}  // namespace

RetentionPolicy retention_policy(const config::RetentionConfig& config) {
  return RetentionPolicy{.max_age_ms = static_cast<std::int64_t>(config.max_age_days) * kDayMs,
                         .budget_bytes = config.disk_budget_mib << 20,
                         .keep_summary = config.keep_rows == config::KeepRows::kSummary,
                         .actions_max_unused_ms = static_cast<std::int64_t>(config.actions_days) * kDayMs};
}

std::string_view to_string(RemovalReason reason) { return reason == RemovalReason::age ? "age" : "budget"; }

RetentionPlan plan_retention(std::vector<RunUsage> runs, const RetentionPolicy& policy, std::int64_t now_ms) {
  std::sort(runs.begin(), runs.end(), [](const RunUsage& a, const RunUsage& b) {
    return a.finished_ms != b.finished_ms ? a.finished_ms < b.finished_ms : a.id < b.id;
  });
  RetentionPlan plan;
  for (const auto& run : runs) plan.bytes_before += run.bytes;
  std::uint64_t total = plan.bytes_before;
  std::vector<bool> removed(runs.size(), false);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const RunUsage& run = runs[i];
    if (!store::is_final(run.state) || run.finished_ms >= now_ms - policy.max_age_ms) continue;
    // An expired summary with nothing left on disk is what the policy wants kept.
    if (policy.keep_summary && run.expired && run.bytes == 0) continue;
    removed[i] = true;
    total -= run.bytes;
  }
  std::vector<bool> for_budget(runs.size(), false);
  for (std::size_t i = 0; i < runs.size() && total > policy.budget_bytes; ++i) {
    const RunUsage& run = runs[i];
    if (removed[i] || !store::is_final(run.state) || run.bytes == 0) continue;
    removed[i] = true;
    for_budget[i] = true;
    total -= run.bytes;
  }
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (removed[i])
      plan.removals.push_back(
          Removal{runs[i].id, for_budget[i] ? RemovalReason::budget : RemovalReason::age, runs[i].bytes});
  plan.bytes_after = total;
  return plan;
}

std::set<std::string> mirrors_in_use(const config::AgentConfig& config, const std::vector<store::RunSummary>& runs) {
  std::set<std::string> names;
  for (const auto& repo : config.repositories)
    if (!repo.clone_url.empty()) names.insert(git::mirror_dir_name(repo.clone_url));
  for (const auto& run : runs) {
    if (run.clone_url.empty()) continue;
    const auto forge = config::parse_forge(run.forge);
    const bool configured = forge && config.find_repository(*forge, run.repository) != nullptr;
    if (configured || !store::is_final(run.state)) names.insert(git::mirror_dir_name(run.clone_url));
  }
  return names;
}

std::vector<std::string> stale_mirrors(const std::vector<std::string>& present, const std::set<std::string>& in_use) {
  std::vector<std::string> stale;
  for (const auto& name : present)
    if (!name.empty() && name.front() != '.' && !in_use.contains(name)) stale.push_back(name);
  std::sort(stale.begin(), stale.end());
  return stale;
}

Retention::Retention(config::ConfigRef config, store::RunStore& store, Now now, Metrics* metrics)
    : config_(config), store_(store), now_(std::move(now)), metrics_(metrics),
      policy_(retention_policy(config.get()->retention)) {}

Retention::~Retention() { stop(); }

std::uint64_t Retention::run_bytes(std::int64_t id) const {
  return folder_bytes(config_.get()->state_dir / "runs" / std::to_string(id));
}

void Retention::remove_run(const Removal& removal, RetentionReport& report) {
  const fs::path dir = config_.get()->state_dir / "runs" / std::to_string(removal.id);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) {
    spdlog::error("event=retention_remove_failed run={} dir={} error=\"{}\"", removal.id, dir.string(), ec.message());
    return;
  }
  if (removal.bytes > 0) ++report.removed_runs;
  report.freed_bytes += removal.bytes;
  auto changed = policy_.keep_summary ? store_.expire_run(removal.id, now_()) : store_.delete_run(removal.id);
  if (!changed) {
    spdlog::error("event=retention_row_failed run={} error=\"{}\"", removal.id, changed.error().message);
    return;
  }
  if (*changed) ++(policy_.keep_summary ? report.expired_rows : report.deleted_rows);
  spdlog::info("event=retention_removed run={} reason={} bytes={} rows={}", removal.id, to_string(removal.reason),
               removal.bytes, policy_.keep_summary ? "summary" : "deleted");
}

void Retention::remove_stale_mirrors(const std::vector<store::RunSummary>& runs, RetentionReport& report) {
  const fs::path mirrors = config_.get()->state_dir / "git";
  std::vector<std::string> present;
  std::error_code ec;
  for (fs::directory_iterator it(mirrors, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) present.push_back(it->path().filename().string());
  const auto stale = stale_mirrors(present, mirrors_in_use(*config_.get(), runs));
  if (stale.empty()) return;
  // A running job's checkout reads objects from mirrors (submodules' too, which no
  // stored URL names): stale mirrors wait for a pass with no run in progress.
  if (std::any_of(runs.begin(), runs.end(), [](const auto& r) { return r.state == store::RunState::running; })) {
    report.mirrors_deferred = true;
    return;
  }
  for (const auto& name : stale) {
    const fs::path lock_file = mirrors / (name + ".lock");
    MirrorLock lock(lock_file);
    if (!lock.held()) continue;  // being fetched: wanted after all
    fs::remove_all(mirrors / name, ec);
    if (ec) {
      spdlog::error("event=retention_mirror_failed mirror={} error=\"{}\"", name, ec.message());
      continue;
    }
    fs::remove(lock_file, ec);
    ++report.removed_mirrors;
    spdlog::info("event=retention_mirror_removed mirror={}", name);
  }
}

std::expected<void, store::StoreError> Retention::prune_actions(const std::vector<store::RunSummary>& runs,
                                                                RetentionReport& report) {
  // The actions unfinished runs resolved stay whatever their age. A run that
  // resolves one after this read stamped it (or will find it gone and write it
  // again): see agent/runner/action_cache_pruning.h.
  std::vector<ActionUse> in_use, recorded;
  for (const auto& run : runs) {
    if (store::is_final(run.state)) continue;
    auto refs = store_.action_refs_of(run.id);
    if (!refs) return std::unexpected(refs.error());
    for (const auto& ref : *refs) in_use.push_back({ref.repository, ref.commit, "", ref.at_ms});
  }
  // Uses recorded by finished runs count as uses too (a tree written by a version
  // that did not stamp its folders would otherwise look as old as its writing).
  auto last_uses = store_.action_last_uses();
  if (!last_uses) return std::unexpected(last_uses.error());
  for (const auto& use : *last_uses) recorded.push_back({use.repository, use.commit, "", use.at_ms});
  const auto config = config_.get();
  ActionsOptions options;  // no credentials: a prune never fetches
  options.state_dir = config->state_dir;
  options.source = config->actions.source;
  ActionCache cache(std::move(options));
  const ActionPruneReport pruned =
      cache.prune(std::move(in_use), std::move(recorded), policy_.actions_max_unused_ms, now_());
  for (const auto& folder : pruned.removed) spdlog::info("event=retention_action_removed folder={}", folder);
  for (const auto& [folder, why] : pruned.failed)
    spdlog::error("event=retention_action_failed folder={} error=\"{}\"", folder, why);
  report.removed_action_trees = pruned.removed_trees;
  report.removed_action_mirrors = pruned.removed_mirrors;
  report.removed_action_temporaries = pruned.removed_temporaries;
  report.action_freed_bytes = pruned.freed_bytes;
  report.actions_deferred = pruned.deferred;
  return {};
}

std::expected<RetentionReport, store::StoreError> Retention::run_pass() {
  auto runs = store_.run_summaries();
  if (!runs) return std::unexpected(runs.error());
  RetentionReport report;
  std::vector<RunUsage> usage;
  for (const auto& run : *runs) {
    const bool finished = store::is_final(run.state);
    // Logs a crash left plain between a run's end and their compression.
    if (finished && run.expired_ms == 0) {
      const auto compressed = compress_logs_under(config_.get()->state_dir / "runs" / std::to_string(run.id) / "logs");
      report.compressed_logs += compressed.files;
    }
    usage.push_back(RunUsage{.id = run.id,
                             .state = run.state,
                             .finished_ms = run.finished_ms != 0 ? run.finished_ms : run.created_ms,
                             .bytes = run_bytes(run.id),
                             .expired = run.expired_ms != 0});
  }
  const RetentionPlan plan = plan_retention(std::move(usage), policy_, now_());
  for (const auto& removal : plan.removals) remove_run(removal, report);
  report.kept_bytes = plan.bytes_before - report.freed_bytes;

  auto remaining = store_.run_summaries();
  if (!remaining) return std::unexpected(remaining.error());
  remove_stale_mirrors(*remaining, report);
  if (auto pruned = prune_actions(*remaining, report); !pruned) return std::unexpected(pruned.error());

  if (metrics_)
    metrics_->retention_pass(report.removed_runs, report.freed_bytes, report.removed_mirrors,
                             report.removed_action_trees, report.removed_action_mirrors);
  spdlog::info(
      "event=retention_pass removed_runs={} expired_rows={} deleted_rows={} freed_bytes={} kept_bytes={} "
      "budget_bytes={} compressed_logs={} removed_mirrors={} mirrors_deferred={} removed_action_trees={} "
      "removed_action_mirrors={} removed_action_temporaries={} action_freed_bytes={} actions_deferred={}",
      report.removed_runs, report.expired_rows, report.deleted_rows, report.freed_bytes, report.kept_bytes,
      policy_.budget_bytes, report.compressed_logs, report.removed_mirrors, report.mirrors_deferred,
      report.removed_action_trees, report.removed_action_mirrors, report.removed_action_temporaries,
      report.action_freed_bytes, report.actions_deferred);
  return report;
}

void Retention::start() {
  thread_ = std::thread([this] {
    const auto interval = std::chrono::minutes(config_.get()->retention.interval_minutes);
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      if (auto pass = run_pass(); !pass)
        spdlog::error("event=retention_failed error=\"{}\"", pass.error().message);
      lock.lock();
      wake_.wait_for(lock, interval, [this] { return stopping_; });
    }
  });
}

void Retention::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sandci::agent::server
