#pragma once
// Delivers the status outbox to the forges. One thread takes the statuses that are
// due, oldest first, and posts each with its repository's token. A delivered state
// is recorded; a forge outage, a 5xx or a rate limit schedules a retry with
// exponential backoff and jitter (never sooner than the forge's Retry-After); a
// permanent refusal (404, 422...) is recorded with the forge's reason and never
// retried. Everything it needs survives a restart in the store, so nothing
// answered to a forge is lost.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/http/http_client.h"
#include "agent/server/metrics.h"
#include "agent/store/run_store.h"

namespace sandci::agent::server {

struct SenderOptions {
  std::chrono::milliseconds first_retry{std::chrono::seconds(2)};
  std::chrono::milliseconds longest_retry{std::chrono::minutes(10)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds idle_poll{std::chrono::seconds(1)};
};

// The wait before retry number `attempt` (1 = the first retry): first_retry
// doubled per attempt up to longest_retry, scaled by `jitter` in [0.5, 1.5), and
// never shorter than `retry_after`.
std::chrono::milliseconds retry_delay(const SenderOptions& options, int attempt, double jitter,
                                      std::chrono::milliseconds retry_after);

class StatusSender {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch
  StatusSender(config::ConfigRef config, store::RunStore& store, http::HttpClient& client,
               SenderOptions options, Now now, Metrics* metrics = nullptr);
  ~StatusSender();

  void start();
  // New statuses are in the outbox: send them now.
  void wake();
  // Sends what is due once, on the caller's thread; returns how many were tried.
  std::size_t send_due();
  void stop();

 private:
  void loop();
  void send_one(const store::StatusRecord& status);

  config::ConfigRef config_;  // a snapshot per piece of work: the agent reloads it on SIGHUP
  store::RunStore& store_;
  http::HttpClient& client_;
  SenderOptions options_;
  Now now_;
  Metrics* metrics_;
  std::mt19937 random_{std::random_device{}()};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sandci::agent::server
