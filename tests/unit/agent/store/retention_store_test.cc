// Schema version 5: what retention reads and writes in the store (run summaries, runs
// expired with their rows kept, runs deleted with what hangs on them), on a real
// SQLite file, including a file migrated from version 4.
#include <gtest/gtest.h>

#include "agent/store/sqlite_db.h"
#include "agent/store/sqlite_schema.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::make_delivery;
using testing::make_run;
using testing::open_store;
using testing::query_file;

class RetentionStoreTest : public ::testing::Test {
 protected:
  // A run delivered, claimed, given a job and an action ref, and finished with `state`.
  std::int64_t finished_run(RunState state, std::int64_t now_ms, const std::string& delivery) {
    auto accepted = store_->accept_delivery(make_delivery(delivery, now_ms), make_run());
    EXPECT_TRUE(accepted && accepted->run_id);
    auto claimed = store_->claim_next_run("agent-a", 60'000, now_ms + 1);
    EXPECT_TRUE(claimed && *claimed);
    const Claim claim = (*claimed)->claim();
    JobRecord job;
    job.run_id = claim.run_id;
    job.key = "ci.yml/build";
    job.name = "build";
    job.state = JobState::success;
    EXPECT_TRUE(store_->put_job(claim, job).value_or(false));
    EXPECT_TRUE(store_->put_action_ref({claim.run_id, "acme/setup", "v1", std::string(40, 'a'), "https://x", false, now_ms}));
    EXPECT_TRUE(store_->finish_run(claim, state, "", now_ms + 2).value_or(false));
    return claim.run_id;
  }

  TempDir dir_;
  fs::path file_ = dir_.path() / "state.db";
  std::unique_ptr<RunStore> store_ = open_store(file_);
};

TEST_F(RetentionStoreTest, SummariesListEveryRunOldestFirstWithoutExpiry) {
  ASSERT_TRUE(store_);
  const auto first = finished_run(RunState::failure, 1000, "d-1");
  auto queued = store_->enqueue_run(make_run("acme/other"), 5000);
  ASSERT_TRUE(queued);
  auto runs = store_->run_summaries();
  ASSERT_TRUE(runs) << runs.error().message;
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, first);
  EXPECT_EQ((*runs)[0].state, RunState::failure);
  EXPECT_EQ((*runs)[0].finished_ms, 1002);
  EXPECT_EQ((*runs)[0].clone_url, "https://example.invalid/acme/app.git");
  EXPECT_EQ((*runs)[0].expired_ms, 0);
  EXPECT_EQ((*runs)[1].id, *queued);
  EXPECT_EQ((*runs)[1].repository, "acme/other");
  EXPECT_EQ((*runs)[1].state, RunState::queued);
  EXPECT_EQ((*runs)[1].created_ms, 5000);
}

TEST_F(RetentionStoreTest, ExpireKeepsTheRowsAndTheFirstExpiryTime) {
  ASSERT_TRUE(store_);
  const auto id = finished_run(RunState::success, 1000, "d-1");
  EXPECT_TRUE(store_->expire_run(id, 9000).value_or(false));
  EXPECT_TRUE(store_->expire_run(id, 12000).value_or(false));
  auto run = store_->get_run(id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->expired_ms, 9000);
  EXPECT_EQ((*run)->state, RunState::success);
  EXPECT_EQ(store_->jobs_of(id).value_or(std::vector<JobRecord>{}).size(), 1u);
  EXPECT_EQ(store_->run_summaries().value().front().expired_ms, 9000);
}

TEST_F(RetentionStoreTest, RunsNotFinishedAreNeitherExpiredNorDeleted) {
  ASSERT_TRUE(store_);
  auto queued = store_->enqueue_run(make_run(), 1000);
  ASSERT_TRUE(queued);
  EXPECT_FALSE(store_->expire_run(*queued, 2000).value_or(true));
  EXPECT_FALSE(store_->delete_run(*queued).value_or(true));
  auto claimed = store_->claim_next_run("agent-a", 60'000, 3000);
  ASSERT_TRUE(claimed && *claimed);
  EXPECT_FALSE(store_->expire_run(*queued, 4000).value_or(true));
  EXPECT_FALSE(store_->delete_run(*queued).value_or(true));
  auto run = store_->get_run(*queued);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->expired_ms, 0);
  EXPECT_FALSE(store_->expire_run(999, 4000).value_or(true));
  EXPECT_FALSE(store_->delete_run(999).value_or(true));
}

TEST_F(RetentionStoreTest, DeleteRemovesTheRunAndWhatHangsOnItButKeepsTheDelivery) {
  ASSERT_TRUE(store_);
  const auto gone = finished_run(RunState::failure, 1000, "d-1");
  const auto kept = finished_run(RunState::success, 2000, "d-2");
  ASSERT_TRUE(store_->rerun(gone, {}, "alice", 3000));
  EXPECT_TRUE(store_->delete_run(gone).value_or(false));
  EXPECT_FALSE(store_->delete_run(gone).value_or(true));
  EXPECT_FALSE(store_->get_run(gone).value_or(std::nullopt).has_value());
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM jobs WHERE run_id = " + std::to_string(gone)), 0);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM run_actions WHERE run_id = " + std::to_string(gone)), 0);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM action_refs WHERE run_id = " + std::to_string(gone)), 0);
  // The delivery still dedupes a redelivery.
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM deliveries WHERE delivery_id = 'd-1' AND run_id IS NULL"), 1);
  auto again = store_->accept_delivery(make_delivery("d-1", 4000), make_run());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->duplicate);
  // The other run is untouched.
  EXPECT_EQ(store_->jobs_of(kept).value_or(std::vector<JobRecord>{}).size(), 1u);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM action_refs WHERE run_id = " + std::to_string(kept)), 1);
}

TEST_F(RetentionStoreTest, MigratesAVersionFourFileWithItsRunsNotExpired) {
  store_.reset();
  TempDir other;
  const fs::path file = other.path() / "v4.db";
  {
    auto db = SqliteDb::open(file, /*create=*/true, 5000);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(migrate_schema(**db, file, 4));
    ASSERT_TRUE((*db)->exec(
        "INSERT INTO runs (repository, forge, event, action, ref, sha, base_ref, head_ref, "
        "clone_url, from_fork, payload_json, trigger_source, concurrency_key, delivery_id, title, "
        "state, created_ms, finished_ms) VALUES ('acme/app', 'github', 'push', '', "
        "'refs/heads/main', 'abc', '', '', 'https://example.invalid/a.git', 0, '{}', 'webhook', '', "
        "'d-1', 'old run', 'success', 100, 200)",
        "insert a version 4 run"));
  }
  ASSERT_EQ(query_file(file, "PRAGMA user_version"), 4);
  auto store = open_store(file);
  ASSERT_TRUE(store);
  EXPECT_EQ(query_file(file, "PRAGMA user_version"), sqlite_schema_version());
  EXPECT_GE(sqlite_schema_version(), 5);
  auto run = store->get_run(1);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->title, "old run");
  EXPECT_EQ((*run)->expired_ms, 0);
  EXPECT_TRUE(store->expire_run(1, 300).value_or(false));
}

}  // namespace
}  // namespace sandci::agent::store
