#pragma once
// The agent's capacity: at most N jobs in sandboxes at once across every run.
// Jobs take a slot before their sandbox starts and give it back when it is gone.
// Slots are handed out in the order jobs asked for them, so the jobs of several
// runs interleave and one big run cannot starve the others.
// Slots nest: a run's own slots (its capacity, shared by its workflows running
// side by side) may sit inside the agent's, and a job then holds one of each.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

namespace sandci::agent {

class JobSlots {
 public:
  explicit JobSlots(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  // Slots inside `parent` (may be null): acquire() takes one here, then one there.
  JobSlots(std::size_t capacity, JobSlots* parent) : capacity_(capacity == 0 ? 1 : capacity), parent_(parent) {}

  // Blocks until a slot is free and it is this caller's turn (here, then in the
  // parent); returns false, holding nothing, if `stop` becomes true while waiting.
  bool acquire(const std::atomic<bool>& stop);
  // Gives back what acquire() took.
  void release();

  // A slot for a sandbox started ahead of its job (a warm one): taken only when
  // one is free here and in the parent and no job waits for one, never waiting.
  // Give it back with release(). A job that waits for a slot longer than
  // kReclaimAfter asks the reclaimers to give back a slot held that way.
  bool try_acquire();
  // `reclaim` destroys one idle sandbox started ahead and releases its slot,
  // returning whether it did; called from a waiting job's thread, never under a
  // lock of this object. remove_reclaimer() returns once no call is under way.
  using Reclaimer = std::function<bool()>;
  std::uint64_t add_reclaimer(Reclaimer reclaim);
  void remove_reclaimer(std::uint64_t id);
  // Long enough for a finished job's teardown to free its slot for the next job
  // of its run (which may take a warm sandbox of the same run), short beside a
  // sandbox's start.
  static constexpr std::chrono::milliseconds kReclaimAfter{300};

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const;
  std::size_t waiting() const;

 private:
  bool acquire_own(const std::atomic<bool>& stop);
  void release_own();
  bool try_acquire_own();
  bool reclaim_one();  // asks this object's reclaimers, then the parent's

  const std::size_t capacity_;
  JobSlots* const parent_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t in_use_ = 0;
  std::uint64_t next_ticket_ = 0;
  std::deque<std::uint64_t> queue_;  // tickets of the callers waiting, oldest first
  std::mutex reclaim_mutex_;          // held while a reclaimer runs
  std::uint64_t next_reclaimer_ = 0;
  std::map<std::uint64_t, Reclaimer> reclaimers_;
};

// Holds one slot for a scope.
class SlotLease {
 public:
  SlotLease(JobSlots* slots, const std::atomic<bool>& stop) : slots_(slots) {
    held_ = !slots_ || slots_->acquire(stop);
  }
  ~SlotLease() {
    if (slots_ && held_) slots_->release();
  }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  bool held() const { return held_; }

 private:
  JobSlots* slots_;
  bool held_ = false;
};

}  // namespace sandci::agent
