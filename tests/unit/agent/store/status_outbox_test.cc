// The commit-status outbox: newest state wins, the forge never gets one state twice for
// a context, retries and refusals.
#include <gtest/gtest.h>

#include "agent/store/run_store.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

using namespace sandci::agent::store::testing;

const std::string kRepo = "acme/app";
const std::string kSha = "0123456789abcdef0123456789abcdef01234567";

class StatusOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(tmp_.path() / "state.db");
    ASSERT_NE(store_, nullptr);
  }

  void put(const std::string& context, const std::string& state, std::int64_t now,
           const std::string& description = "") {
    auto done = store_->put_status(kRepo, "github", kSha, context, state, description,
                                   "http://127.0.0.1:8080/runs/1", "refs/heads/main", now);
    ASSERT_TRUE(done) << done.error().message;
  }

  std::vector<StatusRecord> due(std::int64_t now) {
    auto rows = store_->due_statuses(now, 100);
    EXPECT_TRUE(rows) << rows.error().message;
    return rows.value_or(std::vector<StatusRecord>{});
  }

  std::int64_t pending() { return store_->pending_status_count().value(); }

  TempDir tmp_;
  std::unique_ptr<RunStore> store_;
};

TEST_F(StatusOutboxTest, NewestStateReplacesAnUndeliveredOne) {
  put("sandci/build", "pending", 1000, "queued");
  put("sandci/build", "success", 2000, "passed");
  put("sandci/test", "pending", 1500);

  auto rows = due(3000);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].context, "sandci/test");  // due since 1500
  EXPECT_EQ(rows[1].context, "sandci/build");
  EXPECT_EQ(rows[1].state, "success");
  EXPECT_EQ(rows[1].description, "passed");
  EXPECT_EQ(rows[1].target_url, "http://127.0.0.1:8080/runs/1");
  EXPECT_EQ(rows[1].ref, "refs/heads/main");
  EXPECT_EQ(rows[1].attempts, 0);
  EXPECT_EQ(pending(), 2);
  EXPECT_TRUE(due(1200).empty()) << "nothing is due before its time";
}

TEST_F(StatusOutboxTest, StatusesOfOneCommitListsItsContextsWithTheirNewestState) {
  put("sandci/build", "pending", 1000);
  put("sandci", "error", 1100, "cannot fetch");
  put("sandci/build", "success", 2000);
  ASSERT_TRUE(store_->put_status(kRepo, "github", std::string(40, 'f'), "sandci/other", "pending", "", "", "", 1200));
  ASSERT_TRUE(store_->put_status(kRepo, "gitlab", kSha, "sandci/gitlab", "pending", "", "", "", 1300));

  auto rows = store_->statuses_of("github", kRepo, kSha);
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].context, "sandci/build");
  EXPECT_EQ((*rows)[0].state, "success");
  EXPECT_EQ((*rows)[1].context, "sandci");
  EXPECT_EQ((*rows)[1].state, "error");
  EXPECT_EQ((*rows)[1].description, "cannot fetch");
  EXPECT_TRUE(store_->statuses_of("github", "acme/other", kSha)->empty());
}

TEST_F(StatusOutboxTest, TheSameStateIsNeverQueuedTwiceForAContext) {
  put("sandci/build", "pending", 1000);
  auto rows = due(1000);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(store_->mark_status_delivered(rows[0].id, "pending"));
  EXPECT_EQ(pending(), 0);

  put("sandci/build", "pending", 2000, "still waiting");
  EXPECT_EQ(pending(), 0);
  EXPECT_TRUE(due(3000).empty());

  put("sandci/build", "success", 4000);
  ASSERT_EQ(due(4000).size(), 1u);
  // pending again before success went out: the forge already shows pending.
  put("sandci/build", "pending", 4100);
  EXPECT_TRUE(due(5000).empty());
}

TEST_F(StatusOutboxTest, NewerStateArrivingWhileOneIsDeliveredStaysDue) {
  put("sandci/build", "pending", 1000);
  auto sending = due(1000);
  ASSERT_EQ(sending.size(), 1u);
  put("sandci/build", "failure", 1100);  // arrives while "pending" is on the wire
  ASSERT_TRUE(store_->mark_status_delivered(sending[0].id, "pending"));

  auto rows = due(1200);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, sending[0].id);
  EXPECT_EQ(rows[0].state, "failure");
  ASSERT_TRUE(store_->mark_status_delivered(rows[0].id, "failure"));
  EXPECT_EQ(pending(), 0);
  put("sandci/build", "failure", 1300);
  EXPECT_EQ(pending(), 0);
}

TEST_F(StatusOutboxTest, DeliveredStateDiffersFromANewerOneThatEqualsTheOldDelivered) {
  put("sandci/build", "pending", 1000);
  ASSERT_TRUE(store_->mark_status_delivered(due(1000)[0].id, "pending"));
  put("sandci/build", "success", 2000);
  auto sending = due(2000);
  ASSERT_EQ(sending.size(), 1u);
  // Back to pending (a re-run) while success is on the wire: once success lands, the
  // forge shows success, so pending must go out again.
  put("sandci/build", "pending", 2100);
  EXPECT_EQ(pending(), 0);
  ASSERT_TRUE(store_->mark_status_delivered(sending[0].id, "success"));
  auto rows = due(2200);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, "pending");
}

TEST_F(StatusOutboxTest, RetryPostponesAndCountsAttempts) {
  put("sandci/build", "success", 1000);
  auto id = due(1000)[0].id;
  ASSERT_TRUE(store_->mark_status_retry(id, 5000, "HTTP 502 from the forge"));
  EXPECT_TRUE(due(4999).empty());
  auto rows = due(5000);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attempts, 1);
  EXPECT_EQ(rows[0].last_error, "HTTP 502 from the forge");
  ASSERT_TRUE(store_->mark_status_retry(id, 9000, "timeout"));
  EXPECT_EQ(due(9000)[0].attempts, 2);

  // A newer state is due at once with attempts reset.
  put("sandci/build", "failure", 6000);
  rows = due(6000);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_EQ(rows[0].last_error, "");
}

TEST_F(StatusOutboxTest, RefusedIsKeptButNeverRetriedUntilANewerState) {
  put("sandci/build", "success", 1000);
  auto id = due(1000)[0].id;
  ASSERT_TRUE(store_->mark_status_refused(id, "HTTP 422: description too long"));
  EXPECT_TRUE(due(1'000'000).empty());
  EXPECT_EQ(pending(), 0);
  ASSERT_TRUE(store_->mark_status_retry(id, 2000, "ignored"));
  EXPECT_TRUE(due(1'000'000).empty());

  put("sandci/build", "failure", 3000);
  auto rows = due(3000);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].state, "failure");
}

TEST_F(StatusOutboxTest, DueStatusesHonoursTheLimit) {
  for (int i = 0; i < 5; ++i) put("ctx-" + std::to_string(i), "pending", 1000 + i);
  auto rows = store_->due_statuses(2000, 3).value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].context, "ctx-0");
  EXPECT_EQ(rows[2].context, "ctx-2");
}

TEST_F(StatusOutboxTest, TheOldestWaitingStatusKeepsItsAgeUntilDelivered) {
  EXPECT_EQ(store_->oldest_due_status_ms().value(), std::nullopt) << "an empty outbox has no age";
  put("sandci/build", "pending", 1000);
  put("sandci/test", "pending", 1500);
  // A newer state of a key still waiting does not make it young again.
  put("sandci/build", "success", 2000);
  ASSERT_TRUE(store_->mark_status_retry(due(2000)[0].id, 9000, "forge answered 500"));
  EXPECT_EQ(store_->oldest_due_status_ms().value(), 1000);

  for (const auto& row : due(9000)) ASSERT_TRUE(store_->mark_status_delivered(row.id, row.state));
  EXPECT_EQ(store_->oldest_due_status_ms().value(), std::nullopt);
  // Delivered, then a new state: its wait starts now.
  put("sandci/build", "failure", 10000);
  EXPECT_EQ(store_->oldest_due_status_ms().value(), 10000);
}

}  // namespace
}  // namespace sandci::agent::store
