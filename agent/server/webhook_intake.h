#pragma once
// POST /webhook: turns a forge's delivery into a durably queued run, or a clear
// answer. In order: which forge (the path /webhook/<forge>, else its headers),
// the repository the body names (nothing in it is trusted yet), that
// repository's secret, the signature over the raw bytes, then the event. The
// delivery and its run are committed before the 2xx answer, so nothing answered
// 2xx is lost; a delivery id seen before starts nothing.
//
// Answers: 202 queued; 200 ping, "duplicate", "ignored: <why>"; 400 malformed
// body; 401 missing or wrong signature, and a repository this agent does not
// serve (401 rather than 404 so that an unauthenticated caller cannot learn
// which repositories are configured: the agent's log says which it was); 405
// not a POST; 503 when the store cannot commit, and 503 (with Retry-After)
// while the state folder's file system has less free space than
// limits.state_min_free_mib, before anything is written: a delivery refused so
// is not recorded, and its redelivery is taken once space returns.
// Never a 5xx for bad input: GitLab disables a hook after 4 failures in a row.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/forge/forge_kind.h"
#include "agent/http/http_types.h"
#include "agent/server/metrics.h"
#include "agent/store/run_store.h"

namespace sandci::agent::server {

class WebhookIntake {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch
  // `queued(run_id, superseded)` is called after a run is committed, with the
  // ids of older running runs it supersedes (to stop them).
  using Queued = std::function<void(std::int64_t, const std::vector<std::int64_t>&)>;

  WebhookIntake(config::ConfigRef config, store::RunStore& store, Now now, Queued queued,
                Metrics* metrics = nullptr);
  // Waits until every delivery handle_async() handed to the store has been answered.
  ~WebhookIntake();
  WebhookIntake(const WebhookIntake&) = delete;
  WebhookIntake& operator=(const WebhookIntake&) = delete;

  // `forge_in_path`: the <forge> of /webhook/<forge>, empty for /webhook.
  http::HttpResponse handle(const http::HttpRequest& request, const std::string& forge_in_path);

  // handle() without holding the calling thread while the delivery is committed: the
  // same checks on the caller's thread, then `respond` is called exactly once with the
  // same answer, after the commit (on the store's writer thread) for a delivery that
  // starts no run, else before this returns (a queued run's supersede is a store write
  // of its own, which the writer thread cannot wait for). `respond` must be quick and
  // must not throw.
  void handle_async(const http::HttpRequest& request, const std::string& forge_in_path,
                    std::function<void(http::HttpResponse)> respond);

 private:
  // A delivery verified and ready to commit, or the answer when it is not.
  struct Decided;
  Decided decide(const http::HttpRequest& request, const std::string& forge_in_path);
  // The answer once the store has (or has not) committed the delivery.
  http::HttpResponse after_commit(Decided& decided,
                                  const std::expected<store::RunStore::Accepted, store::StoreError>& accepted);
  // Why a delivery cannot be recorded now for lack of space, or nullopt; logs the
  // change when the state disk goes below its limit and when it comes back.
  std::optional<std::string> state_disk_full(const config::AgentConfig& config);
  // Ends the contexts that queued run `run_id`, superseded by a push of `newer_sha`,
  // left pending ("superseded by <short sha>").
  void end_superseded_statuses(const config::AgentConfig& config, std::int64_t run_id, const std::string& newer_sha);

  config::ConfigRef config_;  // a snapshot per piece of work: the agent reloads it on SIGHUP
  store::RunStore& store_;
  Now now_;
  Queued queued_;
  Metrics* metrics_;
  std::atomic<bool> disk_full_{false};  // as last seen, to log each change once
  std::mutex in_flight_mutex_;
  std::condition_variable all_answered_;
  std::size_t in_flight_ = 0;  // handle_async() deliveries the store has not told yet
};

}  // namespace sandci::agent::server
