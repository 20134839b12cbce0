#pragma once
// The agent's capacity: at most N jobs in sandboxes at once across every run.
// Jobs take a slot before their sandbox starts and give it back when it is gone.
// Slots are handed out in the order jobs asked for them, so the jobs of several
// runs interleave and one big run cannot starve the others.
// Slots nest: a run's own slots (its capacity, shared by its workflows running
// side by side) may sit inside the agent's, and a job then holds one of each.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
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

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const;
  std::size_t waiting() const;

 private:
  bool acquire_own(const std::atomic<bool>& stop);
  void release_own();

  const std::size_t capacity_;
  JobSlots* const parent_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t in_use_ = 0;
  std::uint64_t next_ticket_ = 0;
  std::deque<std::uint64_t> queue_;  // tickets of the callers waiting, oldest first
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
