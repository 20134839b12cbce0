#include "agent/server/concurrency_groups.h"

#include <chrono>

namespace sandci::agent::server {

bool ConcurrencyGroups::enter(const std::string& group, std::int64_t id, bool cancel_in_progress,
                              const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  if (!groups_[group].running) {
    groups_[group].running = id;
    return true;
  }
  const std::string where = "concurrency group '" + group + "'";
  Group& g = groups_[group];
  if (g.waiting && *g.waiting != id) cancel_(*g.waiting, "replaced by run " + std::to_string(id) + " in " + where);
  g.waiting = id;
  if (cancel_in_progress) cancel_(*g.running, "cancelled by run " + std::to_string(id) + " in " + where);
  // `stop` is set by other threads without this mutex: look at it now and then.
  // The group is looked up again after each wait: others may have erased it.
  while (groups_[group].running && !stop) changed_.wait_for(lock, std::chrono::milliseconds(100));
  Group& now = groups_[group];
  if (now.waiting == id) now.waiting.reset();
  if (stop) {
    if (!now.running && !now.waiting) groups_.erase(group);
    return false;
  }
  now.running = id;
  return true;
}

void ConcurrencyGroups::leave(const std::string& group, std::int64_t id) {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(group);
  if (it == groups_.end() || it->second.running != id) return;
  it->second.running.reset();
  if (!it->second.waiting) groups_.erase(it);
  changed_.notify_all();
}

}  // namespace sandci::agent::server
