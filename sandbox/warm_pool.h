#pragma once
// Warm sandboxes: a SandboxBackend over another one that keeps a few sandboxes
// started ahead, per spec, so that a job finds one already running. A warm
// sandbox is one the inner backend created with exactly the spec the job asks
// for (name_hint aside), started in the background; it is handed out once, to
// one job, and that job destroys it as it would a cold one. Nothing is shared:
// a job never gets a sandbox another job used. A spec is learnt when a job first
// asks for it (that job starts cold); from then on the pool keeps `per_spec`
// sandboxes of it ready. Thread-safe.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

class WarmPool final : public SandboxBackend {
 public:
  // `inner` must outlive the pool. per_spec 0: every create is cold (a pass-through).
  WarmPool(SandboxBackend& inner, std::size_t per_spec);
  // Stops the background start and destroys every sandbox nobody took.
  ~WarmPool() override;

  // A ready sandbox of this spec if there is one (its start_timings are zero:
  // nobody waited for it), else a cold one; either way one more is started in
  // the background for the next job of the same spec.
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override;

  // Sandboxes started and not taken yet (for tests and people).
  std::size_t idle() const;
  // Blocks until no background start is pending or running (tests).
  void wait_idle() const;

 private:
  void refill_loop();

  SandboxBackend& inner_;
  const std::size_t per_spec_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, std::deque<std::unique_ptr<Sandbox>>> ready_;  // by spec_key
  std::map<std::string, SandboxSpec> specs_;
  std::map<std::string, std::size_t> starting_;  // pending + running starts, by key
  std::deque<std::string> queue_;                // keys to start one more for
  bool stopping_ = false;
  bool busy_ = false;
  std::thread worker_;
};

// Two specs with the same key give identical sandboxes: every field but name_hint.
std::string spec_key(const SandboxSpec& spec);

}  // namespace sandci::sandbox
