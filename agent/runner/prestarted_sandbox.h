#pragma once
// The first job's sandbox, started while the run's checkout is still being
// written (the daemon's push to first step is mostly a sandbox start): a
// SandboxBackend over another that starts one sandbox of a guessed spec in the
// background and hands it to the first create() asking for exactly that spec
// (sandbox::spec_key); every other create goes to the inner backend. Made for
// one job and never shared: that job destroys it as it would a cold one. Not
// taken: destroyed by discard() or the destructor.
//
// The job sees its whole checkout: the sandbox mounts the very folder the
// checkout is written into, and nothing in the sandbox reads that folder before
// the job's first step (gVisor's overlay keeps a folder's listing once read).
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/runner/job_slots.h"
#include "sandbox/sandbox.h"

namespace sandci::agent {

class PrestartedSandbox final : public sandbox::SandboxBackend {
 public:
  // `inner` must outlive this. `slots` (may be null): the sandbox holds one of
  // them from its start until a job takes it (the job holds its own) or it is
  // destroyed; taken only when one is free and no job waits (never waiting),
  // and given back when a job has waited for one a moment (JobSlots reclaimers).
  PrestartedSandbox(sandbox::SandboxBackend& inner, JobSlots* slots);
  // Destroys the sandbox if nobody took it (after its start, if under way).
  ~PrestartedSandbox() override;
  PrestartedSandbox(const PrestartedSandbox&) = delete;
  PrestartedSandbox& operator=(const PrestartedSandbox&) = delete;

  // Starts a sandbox of `spec` in the background; false (nothing started) when
  // one was started already or no slot is free.
  bool start(const sandbox::SandboxSpec& spec);

  // The started sandbox when `spec` is its spec and no job took it yet
  // (waiting for its start if under way; its start_timings are the time
  // waited); else, or when its start failed, the inner backend's. Only the
  // first create of that spec waits for a start under way: a second one (a warm
  // pool's next start, another job) starts its own at once instead of waiting
  // to find the sandbox taken.
  std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> create(
      const sandbox::SandboxSpec& spec) override;

  // Destroys the sandbox if no job took it, waiting for its start if under way.
  void discard();

  // Whether a job took the started sandbox (tests and logs).
  bool taken() const;

 private:
  enum class State { kIdle, kStarting, kReady, kTaken, kGone };

  // The sandbox if it is ready and nobody took it (state kGone after); waits
  // for a start under way only when `wait`.
  std::unique_ptr<sandbox::Sandbox> take_unused(bool wait);
  void destroy(std::unique_ptr<sandbox::Sandbox> box);

  sandbox::SandboxBackend& inner_;
  JobSlots* const slots_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::kIdle;
  bool claimed_ = false;  // a create is waiting for the start under way, or took it
  std::string key_;  // spec_key of the started sandbox
  std::unique_ptr<sandbox::Sandbox> ready_;
  std::thread starter_;
  std::optional<std::uint64_t> reclaimer_;
};

}  // namespace sandci::agent
