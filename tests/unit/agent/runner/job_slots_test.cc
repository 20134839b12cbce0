// JobSlots: the agent-wide cap on jobs in sandboxes, shared fairly by runs.
#include "agent/runner/job_slots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace sandci::agent {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `done` holds; the threads under test need a moment.
template <typename Pred>
bool eventually(Pred done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(10ms);
  return done();
}

TEST(JobSlots, NeverMoreThanCapacityAtOnce) {
  JobSlots slots(2);
  std::atomic<bool> stop{false};
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> jobs;
  for (int i = 0; i < 8; ++i)
    jobs.emplace_back([&] {
      SlotLease lease(&slots, stop);
      ASSERT_TRUE(lease.held());
      int now = ++inside;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(5ms);
      --inside;
    });
  for (auto& t : jobs) t.join();
  EXPECT_EQ(most.load(), 2);
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST(JobSlots, WaitersAreServedInTheOrderTheyAsked) {
  JobSlots slots(1);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(slots.acquire(stop));
  std::mutex mutex;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      SlotLease lease(&slots, stop);
      std::lock_guard lock(mutex);
      order.push_back(i);
    });
    ASSERT_TRUE(eventually([&] { return slots.waiting() == static_cast<std::size_t>(i + 1); }));
  }
  slots.release();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(JobSlots, AStoppedWaiterGivesUpAndLetsTheNextOneIn) {
  JobSlots slots(1);
  std::atomic<bool> keep{false}, stop_first{false};
  ASSERT_TRUE(slots.acquire(keep));
  std::atomic<int> first_result{-1};
  std::thread first([&] { first_result = slots.acquire(stop_first) ? 1 : 0; });
  ASSERT_TRUE(eventually([&] { return slots.waiting() == 1; }));
  std::atomic<bool> second_in{false};
  std::thread second([&] {
    SlotLease lease(&slots, keep);
    second_in = lease.held();
  });
  ASSERT_TRUE(eventually([&] { return slots.waiting() == 2; }));
  stop_first = true;
  first.join();
  EXPECT_EQ(first_result.load(), 0);
  EXPECT_EQ(slots.waiting(), 1u);
  slots.release();
  second.join();
  EXPECT_TRUE(second_in.load());
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST(JobSlots, NullSlotsMeanNoLimit) {
  std::atomic<bool> stop{true};
  SlotLease lease(nullptr, stop);
  EXPECT_TRUE(lease.held());
}

TEST(JobSlots, NestedSlotsHoldOneOfEachAndGiveBothBack) {
  JobSlots agent(1);
  JobSlots run(2, &agent);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(run.acquire(stop));
  EXPECT_EQ(run.in_use(), 1u);
  EXPECT_EQ(agent.in_use(), 1u);
  // The run has a slot left, the agent has none: a second job waits, then gives
  // its run slot back when stopped.
  std::atomic<bool> stop_second{false};
  std::atomic<int> second{-1};
  std::thread waiter([&] { second = run.acquire(stop_second) ? 1 : 0; });
  ASSERT_TRUE(eventually([&] { return agent.waiting() == 1u; }));
  EXPECT_EQ(run.in_use(), 2u);
  stop_second = true;
  waiter.join();
  EXPECT_EQ(second, 0);
  EXPECT_EQ(run.in_use(), 1u);
  run.release();
  EXPECT_EQ(run.in_use(), 0u);
  EXPECT_EQ(agent.in_use(), 0u);
}

TEST(JobSlots, TryAcquireTakesOnlyAFreeSlotNobodyWaitsFor) {
  JobSlots parent(2);
  JobSlots run(2, &parent);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(run.try_acquire());  // one of each
  EXPECT_EQ(run.in_use(), 1u);
  EXPECT_EQ(parent.in_use(), 1u);
  ASSERT_TRUE(parent.acquire(stop));  // another run's job: the parent is full
  EXPECT_FALSE(run.try_acquire());
  EXPECT_EQ(run.in_use(), 1u) << "a refused try gives back what it took here";
  parent.release();
  run.release();
  EXPECT_EQ(parent.in_use(), 0u);

  // A job waiting for a slot comes first: try_acquire never jumps the queue.
  JobSlots one(1);
  ASSERT_TRUE(one.acquire(stop));
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    got = one.acquire(stop);
    one.release();
  });
  ASSERT_TRUE(eventually([&] { return one.waiting() == 1; }));
  one.release();
  EXPECT_TRUE(eventually([&] { return got.load(); }));
  waiter.join();
  EXPECT_TRUE(one.try_acquire());
  one.release();
}

TEST(JobSlots, AWaitingJobMakesASlotTakenAheadComeBack) {
  JobSlots slots(1);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(slots.try_acquire());  // a warm sandbox holds the only slot
  std::atomic<int> reclaimed{0};
  const auto id = slots.add_reclaimer([&] {
    if (reclaimed > 0) return false;
    ++reclaimed;
    slots.release();  // its sandbox destroyed
    return true;
  });
  std::atomic<bool> got{false};
  std::thread job([&] { got = slots.acquire(stop); });
  EXPECT_TRUE(eventually([&] { return got.load(); })) << "a job must never wait for a warm sandbox forever";
  job.join();
  EXPECT_EQ(reclaimed, 1);
  EXPECT_EQ(slots.in_use(), 1u);
  slots.remove_reclaimer(id);
  slots.release();
}

}  // namespace
}  // namespace sandci::agent
