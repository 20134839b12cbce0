#pragma once
// The agent's capacity: at most N jobs in sandboxes at once across every run.
// Jobs take a slot before their sandbox starts and give it back when it is gone.
// Slots are handed out in the order jobs asked for them, so the jobs of several
// runs interleave and one big run cannot starve the others.
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

  // Blocks until a slot is free and it is this caller's turn; returns false,
  // holding nothing, if `stop` becomes true while waiting.
  bool acquire(const std::atomic<bool>& stop);
  void release();

  std::size_t capacity() const { return capacity_; }
  std::size_t in_use() const;
  std::size_t waiting() const;

 private:
  const std::size_t capacity_;
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
