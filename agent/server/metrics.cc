#include "agent/server/metrics.h"

#include <cstdio>

namespace sandci::agent::server {
namespace {

std::string number(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return buf;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void labelled_counters(std::string& out, const char* name, const char* help,
                       const std::map<std::pair<std::string, std::string>, std::uint64_t>& counts) {
  header(out, name, "counter", help);
  for (const auto& [labels, count] : counts)
    out += std::string(name) + "{forge=\"" + labels.first + "\",result=\"" + labels.second + "\"} " +
           std::to_string(count) + "\n";
}

void gauge(std::string& out, const char* name, const char* help, std::int64_t value) {
  header(out, name, "gauge", help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}

// Label values come from fixed sets in the code, but keep the format safe anyway.
std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) out += (c == '"' || c == '\\' || c == '\n') ? '_' : c;
  return out;
}

}  // namespace

void Histogram::observe(double value) {
  for (std::size_t i = 0; i < bounds_.size(); ++i)
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  ++count_;
  sum_ += value;
}

void Histogram::render(std::string& out, const std::string& name) const {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : queue_wait_({0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800}),
      job_duration_({1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}),
      mirror_fetch_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

void Metrics::delivery(std::string_view forge, std::string_view result) {
  std::lock_guard lock(mutex_);
  ++deliveries_[{label_value(forge), label_value(result)}];
}

void Metrics::status_post(std::string_view forge, std::string_view result) {
  std::lock_guard lock(mutex_);
  ++status_posts_[{label_value(forge), label_value(result)}];
}

void Metrics::queue_wait(double seconds) {
  std::lock_guard lock(mutex_);
  queue_wait_.observe(seconds);
}

void Metrics::job_finished(double seconds) {
  std::lock_guard lock(mutex_);
  job_duration_.observe(seconds);
}

void Metrics::mirror_fetch(double seconds) {
  std::lock_guard lock(mutex_);
  mirror_fetch_.observe(seconds);
}

void Metrics::retention_pass(std::uint64_t removed_runs, std::uint64_t freed_bytes, std::uint64_t removed_mirrors,
                             std::uint64_t removed_action_trees, std::uint64_t removed_action_mirrors) {
  std::lock_guard lock(mutex_);
  ++retention_passes_;
  retention_removed_runs_ += removed_runs;
  retention_freed_bytes_ += freed_bytes;
  retention_removed_mirrors_ += removed_mirrors;
  retention_removed_action_trees_ += removed_action_trees;
  retention_removed_action_mirrors_ += removed_action_mirrors;
}

std::string Metrics::render(const MetricGauges& gauges) const {
  std::string out;
  std::lock_guard lock(mutex_);
  labelled_counters(out, "sandci_webhook_deliveries_total", "Webhook deliveries by forge and answer.", deliveries_);
  labelled_counters(out, "sandci_status_posts_total", "Commit status posts by forge and how the forge took them.",
                    status_posts_);
  header(out, "sandci_runs", "gauge", "Runs in the store by state.");
  for (const auto& [state, count] : gauges.runs_by_state)
    out += "sandci_runs{state=\"" + label_value(state) + "\"} " + std::to_string(count) + "\n";
  gauge(out, "sandci_queue_depth", "Runs queued, not yet claimed.",
        gauges.runs_by_state.contains("queued") ? gauges.runs_by_state.at("queued") : 0);
  gauge(out, "sandci_jobs_running", "Jobs holding a slot, each in its own sandbox.", gauges.jobs_running);
  gauge(out, "sandci_jobs_waiting", "Jobs waiting for a free slot.", gauges.jobs_waiting);
  gauge(out, "sandci_capacity", "Jobs the agent runs at once.", gauges.capacity);
  gauge(out, "sandci_outbox_depth", "Commit statuses not yet delivered to their forge.", gauges.outbox_depth);
  header(out, "sandci_outbox_oldest_age_seconds", "gauge",
         "How long the oldest undelivered commit status has waited (0 when none waits).");
  out += "sandci_outbox_oldest_age_seconds " + number(gauges.outbox_oldest_age_seconds) + "\n";
  gauge(out, "sandci_sandboxes_alive", "gVisor sandboxes created and not yet destroyed.", gauges.sandboxes_alive);
  header(out, "sandci_run_queue_wait_seconds", "histogram", "Time from a run's delivery to its claim.");
  queue_wait_.render(out, "sandci_run_queue_wait_seconds");
  header(out, "sandci_job_duration_seconds", "histogram", "Time from a job's start to its end.");
  job_duration_.render(out, "sandci_job_duration_seconds");
  header(out, "sandci_mirror_fetch_seconds", "histogram", "Fetch and checkout of a run's commit.");
  mirror_fetch_.render(out, "sandci_mirror_fetch_seconds");
  const auto counter = [&out](const char* name, const char* help, std::uint64_t value) {
    header(out, name, "counter", help);
    out += std::string(name) + " " + std::to_string(value) + "\n";
  };
  counter("sandci_retention_passes_total", "Retention passes run.", retention_passes_);
  counter("sandci_retention_removed_runs_total", "Finished runs whose logs and artifacts retention removed.",
          retention_removed_runs_);
  counter("sandci_retention_freed_bytes_total", "Bytes of logs and artifacts retention removed.",
          retention_freed_bytes_);
  counter("sandci_retention_removed_mirrors_total", "Mirrors of repositories no longer configured that retention removed.",
          retention_removed_mirrors_);
  counter("sandci_retention_removed_action_trees_total",
          "Remote actions' trees (one commit's files) retention removed, unused for retention.actions_days.",
          retention_removed_action_trees_);
  counter("sandci_retention_removed_action_mirrors_total",
          "Remote actions' mirrors retention removed, unused for retention.actions_days.",
          retention_removed_action_mirrors_);
  return out;
}

}  // namespace sandci::agent::server
