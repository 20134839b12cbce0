// Concurrency groups: one run going on and one waiting per group, as Actions does.
#include "agent/server/concurrency_groups.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace sandci::agent::server {
namespace {

using namespace std::chrono_literals;

// Runs' stop flags, set by the groups' cancel callback as the worker does.
class Runs {
 public:
  std::atomic<bool>& stop(std::int64_t id) {
    std::lock_guard lock(mutex_);
    return flags_[id];
  }
  void cancel(std::int64_t id, const std::string& why) {
    std::lock_guard lock(mutex_);
    flags_[id] = true;
    reasons_[id] = why;
  }
  std::string reason(std::int64_t id) {
    std::lock_guard lock(mutex_);
    return reasons_[id];
  }

 private:
  std::mutex mutex_;
  std::map<std::int64_t, std::atomic<bool>> flags_;
  std::map<std::int64_t, std::string> reasons_;
};

template <typename Pred>
bool eventually(Pred done) {
  for (int i = 0; i < 300 && !done(); ++i) std::this_thread::sleep_for(10ms);
  return done();
}

TEST(ConcurrencyGroups, OneGoesOnTheNextWaits) {
  Runs runs;
  ConcurrencyGroups groups([&](std::int64_t id, const std::string& why) { runs.cancel(id, why); });
  ASSERT_TRUE(groups.enter("repo: deploy", 1, false, runs.stop(1)));
  std::atomic<int> second{-1};
  std::thread waiter([&] { second = groups.enter("repo: deploy", 2, false, runs.stop(2)) ? 1 : 0; });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(second.load(), -1) << "run 2 went on beside run 1";
  EXPECT_TRUE(groups.enter("repo: other", 3, false, runs.stop(3))) << "another group is free";
  groups.leave("repo: deploy", 1);
  waiter.join();
  EXPECT_EQ(second.load(), 1);
  EXPECT_FALSE(runs.stop(1));
}

TEST(ConcurrencyGroups, ANewerWaiterReplacesTheOlderOne) {
  Runs runs;
  ConcurrencyGroups groups([&](std::int64_t id, const std::string& why) { runs.cancel(id, why); });
  ASSERT_TRUE(groups.enter("g", 1, false, runs.stop(1)));
  std::atomic<int> second{-1}, third{-1};
  std::thread t2([&] { second = groups.enter("g", 2, false, runs.stop(2)) ? 1 : 0; });
  std::this_thread::sleep_for(200ms);  // run 2 is waiting now
  ASSERT_EQ(second.load(), -1);
  std::thread t3([&] { third = groups.enter("g", 3, false, runs.stop(3)) ? 1 : 0; });
  t2.join();
  EXPECT_EQ(second.load(), 0);
  EXPECT_NE(runs.reason(2).find("replaced by run 3"), std::string::npos) << runs.reason(2);
  groups.leave("g", 1);
  t3.join();
  EXPECT_EQ(third.load(), 1);
  EXPECT_FALSE(runs.stop(1)) << "without cancel-in-progress the running one goes on";
}

TEST(ConcurrencyGroups, CancelInProgressCancelsTheRunningOne) {
  Runs runs;
  ConcurrencyGroups groups([&](std::int64_t id, const std::string& why) { runs.cancel(id, why); });
  ASSERT_TRUE(groups.enter("g", 1, true, runs.stop(1)));
  std::atomic<int> second{-1};
  std::thread t2([&] { second = groups.enter("g", 2, true, runs.stop(2)) ? 1 : 0; });
  ASSERT_TRUE(eventually([&] { return runs.stop(1).load(); }));
  EXPECT_NE(runs.reason(1).find("cancelled by run 2"), std::string::npos);
  groups.leave("g", 1);  // the cancelled run ends
  t2.join();
  EXPECT_EQ(second.load(), 1);
}

}  // namespace
}  // namespace sandci::agent::server
