#pragma once
// The agent's Prometheus metrics (GET /metrics, text exposition format 0.0.4).
// Counters and histograms are kept here as events happen; gauges (queue depth,
// runs by state, outbox depth, jobs running) are read from the store and the
// job slots when scraped. Labels are few and bounded: forge, result, state.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandci::agent::server {

// A histogram with fixed upper bounds, in seconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}
  void observe(double value);
  // Appends `name`'s _bucket, _sum and _count lines.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// What is read at scrape time.
struct MetricGauges {
  std::map<std::string, std::int64_t> runs_by_state;  // queued, running, success...
  std::int64_t jobs_running = 0;   // jobs holding a slot (one sandbox each)
  std::int64_t jobs_waiting = 0;   // jobs waiting for a slot
  std::int64_t capacity = 0;
  std::int64_t outbox_depth = 0;   // statuses not yet delivered
  double outbox_oldest_age_seconds = 0;  // how long the oldest of them has waited; 0: none
  std::int64_t sandboxes_alive = 0;      // sandboxes on disk (created, not yet destroyed)
};

class Metrics {
 public:
  Metrics();

  // A webhook delivery and what it was answered: queued, duplicate, ignored,
  // ping, bad_signature, unknown_repository, malformed, store_error.
  void delivery(std::string_view forge, std::string_view result);
  // A status post and how the forge took it: delivered, retry, refused.
  void status_post(std::string_view forge, std::string_view result);
  void queue_wait(double seconds);                      // queued -> claimed
  void job_finished(double seconds);                    // started -> finished
  void mirror_fetch(double seconds);                    // fetch + checkout of a run's commit
  // One retention pass and what it removed (agent/server/retention.h).
  void retention_pass(std::uint64_t removed_runs, std::uint64_t freed_bytes, std::uint64_t removed_mirrors,
                      std::uint64_t removed_action_trees, std::uint64_t removed_action_mirrors);

  std::string render(const MetricGauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> deliveries_, status_posts_;
  Histogram queue_wait_, job_duration_, mirror_fetch_;
  std::uint64_t retention_passes_ = 0, retention_removed_runs_ = 0, retention_freed_bytes_ = 0,
                retention_removed_mirrors_ = 0, retention_removed_action_trees_ = 0,
                retention_removed_action_mirrors_ = 0;
};

}  // namespace sandci::agent::server
