#pragma once
// Warm sandboxes: a SandboxBackend over another one that keeps a few sandboxes
// started ahead, per spec, so that a job finds one already running. A warm
// sandbox is one the inner backend created with exactly the spec the job asks
// for (name_hint aside), started in the background; it is handed out once, to
// one job, and that job destroys it as it would a cold one. Nothing is shared:
// a job never gets a sandbox another job used.
//
// A spec is learnt when a job first asks for it, or ahead of its first job with
// expect() (the plan says how many jobs will ask). Without an expectation the
// pool keeps `per_spec` sandboxes of a learnt spec ready; with one it starts no
// more than the jobs still expected will take, so a run whose jobs all came
// leaves no unused sandbox behind. Thread-safe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

// What a sandbox started ahead holds from its start until a job takes it or it
// is destroyed unused (the agent's capacity, so that no more sandboxes exist
// than it allows): the pool starts one only when take() says yes (never
// waiting), and calls give_back() once for each. Empty: nothing is held.
struct AheadSlots {
  std::function<bool()> take;
  std::function<void()> give_back;
};

class WarmPool final : public SandboxBackend {
 public:
  // How long a job waits at most for a start under way before it starts its
  // own: the inner backend bounds its starts, this bounds the wait whatever
  // the backend does.
  static constexpr std::chrono::milliseconds kDefaultStartWait{std::chrono::minutes(2)};

  // `inner` must outlive the pool. per_spec 0: every create is cold (a
  // pass-through). `starts_at_once` (at least 1): how many starts run side by
  // side, the jobs' own cold starts included (a background start waits while
  // that many are under way); each competes with running jobs for the cores.
  // `slots`: see AheadSlots; a start it refuses is dropped (the job starts
  // cold). `start_wait`: see kDefaultStartWait.
  WarmPool(SandboxBackend& inner, std::size_t per_spec, std::size_t starts_at_once = 1, AheadSlots slots = {},
           std::chrono::milliseconds start_wait = kDefaultStartWait);
  // Stops the background starts, waits for those under way (the inner backend
  // bounds them), then destroys every sandbox nobody took, those included:
  // when it returns, no sandbox of the pool is left.
  ~WarmPool() override;

  // A ready sandbox of this spec if there is one (its start_timings are zero:
  // nobody waited for it); else the one a background start is making for this
  // spec, when one is under way (it began before this call, so it is ready
  // sooner than a cold one; its start_timings are the time waited); else a cold
  // one. Then more are started in the background for the next jobs of the spec.
  // The wait for a start under way ends when that start ends (a failed one:
  // the job starts cold and a failure of that is its error), after start_wait
  // (the job starts cold), or when the pool is destroyed.
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override;
  // The same, for a job that may be cancelled while it waits: once `cancelled`
  // is set (polled), the wait ends with an error and nothing is started.
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec,
                                                               const std::atomic<bool>& cancelled);

  // `jobs` jobs of this spec are still to come (counting the one about to ask,
  // if any): starts up to min(per_spec, jobs) now, and from then on keeps no
  // more ready or starting than the jobs still expected. Calling it again for
  // the same spec replaces the count. Nothing happens when per_spec is 0.
  void expect(const SandboxSpec& spec, std::size_t jobs);

  // Destroys one sandbox started and not taken (its slot given back), so that
  // a job waiting for a slot can run; false when there is none.
  bool drop_idle();

  // Sandboxes started and not taken yet (for tests and people).
  std::size_t idle() const;
  // Sandboxes started in the background so far, taken or not (tests).
  std::size_t started() const;
  // Blocks until no background start is pending or running (tests).
  void wait_idle() const;

 private:
  struct Kind {
    SandboxSpec spec;
    std::deque<std::unique_ptr<Sandbox>> ready;
    std::size_t queued = 0;   // starts asked for, not begun
    std::size_t running = 0;  // starts under way
    std::size_t waiting = 0;  // creates waiting for a start under way
    std::optional<std::size_t> expected;  // jobs still to come, when known
  };

  void worker_loop();
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create_cold(const SandboxSpec& spec);
  Kind& kind_for(const std::string& key, const SandboxSpec& spec);  // under mutex_
  void top_up(const std::string& key, Kind& kind);                  // under mutex_
  void unqueue_one(const std::string& key, Kind& kind);             // under mutex_

  SandboxBackend& inner_;
  const std::size_t per_spec_;
  const std::size_t starts_at_once_;
  const std::chrono::milliseconds start_wait_;
  const AheadSlots slots_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, Kind> kinds_;  // by spec_key
  std::deque<std::string> queue_;      // keys to start one more for, in order
  std::size_t started_ = 0;
  std::size_t starts_ = 0;  // starts under way: background and the jobs' own cold ones
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Two specs with the same key give identical sandboxes: every field but name_hint.
std::string spec_key(const SandboxSpec& spec);

}  // namespace sandci::sandbox
