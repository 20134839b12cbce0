#include "agent/runner/job_slots.h"

#include <algorithm>
#include <chrono>

namespace sandci::agent {

bool JobSlots::acquire(const std::atomic<bool>& stop) {
  if (!acquire_own(stop)) return false;
  if (parent_ && !parent_->acquire(stop)) {
    release_own();
    return false;
  }
  return true;
}

void JobSlots::release() {
  if (parent_) parent_->release();
  release_own();
}

bool JobSlots::try_acquire() {
  if (!try_acquire_own()) return false;
  if (parent_ && !parent_->try_acquire()) {
    release_own();
    return false;
  }
  return true;
}

bool JobSlots::try_acquire_own() {
  std::lock_guard lock(mutex_);
  if (!queue_.empty() || in_use_ >= capacity_) return false;
  ++in_use_;
  return true;
}

std::uint64_t JobSlots::add_reclaimer(Reclaimer reclaim) {
  std::lock_guard lock(reclaim_mutex_);
  const std::uint64_t id = next_reclaimer_++;
  reclaimers_.emplace(id, std::move(reclaim));
  return id;
}

void JobSlots::remove_reclaimer(std::uint64_t id) {
  std::lock_guard lock(reclaim_mutex_);
  reclaimers_.erase(id);
}

bool JobSlots::reclaim_one() {
  {
    std::lock_guard lock(reclaim_mutex_);
    for (auto& [id, reclaim] : reclaimers_)
      if (reclaim()) return true;
  }
  return parent_ && parent_->reclaim_one();
}

bool JobSlots::acquire_own(const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  const std::uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  auto my_turn = [&] { return queue_.front() == ticket && in_use_ < capacity_; };
  const auto asked = std::chrono::steady_clock::now();
  // `stop` is set by another thread without this mutex: wake now and then to see it.
  while (!my_turn()) {
    if (stop) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
      changed_.notify_all();  // the next in line may be able to go now
      return false;
    }
    // A sandbox started ahead must not keep a job from running: past a short
    // wait, one gives its slot back (its start is lost, the job is not).
    if (std::chrono::steady_clock::now() - asked >= kReclaimAfter) {
      lock.unlock();
      const bool reclaimed = reclaim_one();
      lock.lock();
      if (reclaimed) continue;
    }
    changed_.wait_for(lock, std::chrono::milliseconds(100));
  }
  queue_.pop_front();
  ++in_use_;
  changed_.notify_all();  // another free slot may serve the next in line
  return true;
}

void JobSlots::release_own() {
  std::lock_guard lock(mutex_);
  if (in_use_ > 0) --in_use_;
  changed_.notify_all();
}

std::size_t JobSlots::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

std::size_t JobSlots::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace sandci::agent
