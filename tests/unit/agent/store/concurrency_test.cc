// Many threads at once: group commit must keep every acknowledged write, and count a
// delivery sent by several threads once.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "agent/store/run_store.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

using namespace sandci::agent::store::testing;

constexpr int kThreads = 16;
constexpr int kPerThread = 200;
constexpr int kShared = 50;  // every thread also sends these same delivery ids

TEST(ConcurrencyTest, AcceptsFromManyThreadsAllDurableAndDistinctWithSharedIdsOnce) {
  TempDir tmp;
  fs::path file = tmp.path() / "state.db";
  auto store = open_store(file);
  ASSERT_NE(store, nullptr);

  std::atomic<int> errors{0}, fresh_shared{0}, duplicates{0};
  std::mutex ids_mutex;
  std::set<std::int64_t> run_ids;
  std::atomic<bool> writing{true};

  // A reader beside the writers: WAL lets it read while they commit.
  std::atomic<int> read_errors{0};
  std::thread reader([&] {
    while (writing) {
      if (!store->count_runs(RunState::queued) || !store->list_runs(RunFilter{})) ++read_errors;
    }
  });

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        bool shared = i < kShared;
        auto own = store->accept_delivery(make_delivery(id), make_run());
        auto both = shared ? store->accept_delivery(make_delivery("shared-" + std::to_string(i)),
                                                    make_run())
                           : own;
        for (const auto* result : {&own, &both}) {
          if (!*result) {
            ++errors;
            continue;
          }
          if ((*result)->run_id) {
            std::lock_guard lock(ids_mutex);
            run_ids.insert(*(*result)->run_id);
          }
        }
        if (own && own->duplicate) ++duplicates;
        if (shared && both) (both->duplicate ? duplicates : fresh_shared)++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  writing = false;
  reader.join();

  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(read_errors.load(), 0);
  EXPECT_EQ(fresh_shared.load(), kShared) << "each shared id is new exactly once";
  EXPECT_EQ(duplicates.load(), kShared * (kThreads - 1));
  const std::int64_t expected = kThreads * kPerThread + kShared;
  EXPECT_EQ(static_cast<std::int64_t>(run_ids.size()), expected);

  store.reset();
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM deliveries"), expected);
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM runs"), expected);
  EXPECT_EQ(query_file(file, "SELECT COUNT(DISTINCT run_id) FROM deliveries"), expected);
}

TEST(ConcurrencyTest, ConcurrentClaimersNeverGetTheSameRun) {
  TempDir tmp;
  auto store = open_store(tmp.path() / "state.db");
  ASSERT_NE(store, nullptr);
  constexpr int kRuns = 300;
  for (int i = 0; i < kRuns; ++i) ASSERT_TRUE(store->enqueue_run(make_run(), i));

  std::mutex mutex;
  std::multiset<std::int64_t> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> agents;
  for (int a = 0; a < 6; ++a) {
    agents.emplace_back([&, a] {
      const std::string owner = "agent-" + std::to_string(a);
      for (;;) {
        auto run = store->claim_next_run(owner, 30'000, 1'000'000);
        if (!run) {
          ++errors;
          return;
        }
        if (!*run) return;
        if (!store->finish_run((*run)->claim(), RunState::success, "", 1'000'001).value_or(false)) {
          ++errors;
        }
        std::lock_guard lock(mutex);
        claimed.insert((*run)->id);
      }
    });
  }
  for (auto& agent : agents) agent.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(),
            static_cast<std::size_t>(kRuns));
  EXPECT_EQ(store->count_runs(RunState::success).value(), kRuns);
}

}  // namespace
}  // namespace sandci::agent::store
