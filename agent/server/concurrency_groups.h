#pragma once
// A workflow's `concurrency:` group, as GitHub Actions honours it within a
// repository: at most one run in a group goes on at a time and at most one waits;
// a newer run that comes to wait replaces (cancels) the one waiting, and with
// `cancel-in-progress` it also cancels the one going on.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sandci::agent::server {

class ConcurrencyGroups {
 public:
  using Cancel = std::function<void(std::int64_t run, const std::string& why)>;
  explicit ConcurrencyGroups(Cancel cancel) : cancel_(std::move(cancel)) {}

  // Blocks until run `id` may go on in `group`. Returns false, holding nothing,
  // when `stop` becomes true while it waits (it was replaced by a newer run, or
  // cancelled).
  bool enter(const std::string& group, std::int64_t id, bool cancel_in_progress, const std::atomic<bool>& stop);
  void leave(const std::string& group, std::int64_t id);

 private:
  struct Group {
    std::optional<std::int64_t> running, waiting;
  };

  Cancel cancel_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Group> groups_;
};

}  // namespace sandci::agent::server
