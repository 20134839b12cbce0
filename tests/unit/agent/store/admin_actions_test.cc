// Schema version 2: runs limited to some jobs (re-run of failed jobs) and the record
// of admin actions, on a real SQLite file, including a file migrated from version 1.
#include <gtest/gtest.h>

#include "agent/store/sqlite_db.h"
#include "agent/store/sqlite_schema.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::make_run;
using testing::open_store;
using testing::query_file;

class AdminActionsTest : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path file_ = dir_.path() / "state.db";
};

// A run claimed and finished with `state`, as the worker leaves it.
std::int64_t finished_run(RunStore& store, RunState state, std::int64_t now_ms) {
  auto id = store.enqueue_run(make_run(), now_ms);
  EXPECT_TRUE(id.has_value());
  auto claimed = store.claim_next_run("agent-a", 60'000, now_ms + 1);
  EXPECT_TRUE(claimed && *claimed);
  EXPECT_TRUE(store.finish_run((*claimed)->claim(), state, "", now_ms + 2).value_or(false));
  return *id;
}

TEST_F(AdminActionsTest, SchemaVersionIsAtLeastTwo) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  EXPECT_GE(sqlite_schema_version(), 2);
  EXPECT_EQ(query_file(file_, "PRAGMA user_version"), sqlite_schema_version());
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM run_actions"), 0);
}

TEST_F(AdminActionsTest, MigratesAVersionOneFileKeepingItsRuns) {
  {
    auto db = SqliteDb::open(file_, /*create=*/true, 5000);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(migrate_schema(**db, file_, 1));
    ASSERT_TRUE((*db)->exec(
        "INSERT INTO runs (repository, forge, event, action, ref, sha, base_ref, head_ref, "
        "clone_url, from_fork, payload_json, trigger_source, concurrency_key, delivery_id, title, "
        "state, created_ms, attempt, finished_ms) VALUES ('acme/app', 'github', 'push', '', "
        "'refs/heads/main', 'abc', '', '', 'https://example.invalid/a.git', 0, '{}', 'webhook', '', "
        "'d-1', 'old run', 'failure', 100, 3, 200)",
        "insert a version 1 run"));
  }
  ASSERT_EQ(query_file(file_, "PRAGMA user_version"), 1);

  auto store = open_store(file_);
  ASSERT_TRUE(store);
  EXPECT_EQ(query_file(file_, "PRAGMA user_version"), sqlite_schema_version());
  auto run = store->get_run(1);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->title, "old run");
  EXPECT_EQ((*run)->state, RunState::failure);
  EXPECT_TRUE((*run)->only_jobs.empty()) << "an old run ran every job";
  auto actions = store->actions_of(1);
  ASSERT_TRUE(actions);
  EXPECT_TRUE(actions->empty());

  // The old run can be re-run: the copy's attempt follows the original's.
  auto again = store->rerun(1, {}, "admin", 500);
  ASSERT_TRUE(again && *again);
  auto claimed = store->claim_next_run("agent-a", 60'000, 600);
  ASSERT_TRUE(claimed && *claimed);
  EXPECT_EQ((*claimed)->id, **again);
  EXPECT_EQ((*claimed)->attempt, 4);
  EXPECT_EQ((*claimed)->sha, "abc");
}

TEST_F(AdminActionsTest, MigrateToAnOlderTargetLeavesANewerFileAlone) {
  { ASSERT_TRUE(open_store(file_)); }
  auto db = SqliteDb::open(file_, /*create=*/false, 5000);
  ASSERT_TRUE(db);
  ASSERT_TRUE(migrate_schema(**db, file_, 1));
  EXPECT_EQ(query_file(file_, "PRAGMA user_version"), sqlite_schema_version());
}

TEST_F(AdminActionsTest, RerunCopiesTheRunAndRecordsTheAction) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  NewRun original = make_run("acme/app", "refs/heads/feature", "acme/app refs/heads/feature");
  original.event = "pull_request";
  original.action = "synchronize";
  original.base_ref = "main";
  original.head_ref = "feature";
  original.from_fork = true;
  original.delivery_id = "delivery-9";
  original.payload_json = R"({"number":7})";
  auto id = store->enqueue_run(original, 1000);
  ASSERT_TRUE(id);
  auto claimed = store->claim_next_run("agent-a", 60'000, 1001);
  ASSERT_TRUE(claimed && *claimed);
  ASSERT_TRUE(store->finish_run((*claimed)->claim(), RunState::failure, "", 1002).value_or(false));

  auto copy_id = store->rerun(*id, {}, "carol", 2000);
  ASSERT_TRUE(copy_id && *copy_id) << (copy_id ? "" : copy_id.error().message);
  EXPECT_NE(**copy_id, *id);
  auto copy = store->get_run(**copy_id);
  ASSERT_TRUE(copy && *copy);
  EXPECT_EQ((*copy)->state, RunState::queued);
  EXPECT_EQ((*copy)->trigger, "rerun");
  EXPECT_EQ((*copy)->delivery_id, "");
  EXPECT_EQ((*copy)->created_ms, 2000);
  EXPECT_EQ((*copy)->attempt, 1);
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{{(*copy)->repository, original.repository},
                      {(*copy)->forge, original.forge}, {(*copy)->event, original.event},
                      {(*copy)->action, original.action}, {(*copy)->ref, original.ref},
                      {(*copy)->sha, original.sha}, {(*copy)->base_ref, original.base_ref},
                      {(*copy)->head_ref, original.head_ref}, {(*copy)->clone_url, original.clone_url},
                      {(*copy)->payload_json, original.payload_json},
                      {(*copy)->concurrency_key, original.concurrency_key},
                      {(*copy)->title, original.title}})
    EXPECT_EQ(a, b);
  EXPECT_TRUE((*copy)->from_fork);
  EXPECT_TRUE((*copy)->only_jobs.empty());

  auto actions = store->actions_of(*id);
  ASSERT_TRUE(actions);
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].run_id, *id);
  EXPECT_EQ((*actions)[0].action, "rerun");
  EXPECT_EQ((*actions)[0].actor, "carol");
  EXPECT_EQ((*actions)[0].at_ms, 2000);
  EXPECT_EQ((*actions)[0].detail, "new run " + std::to_string(**copy_id));
  EXPECT_TRUE(store->actions_of(**copy_id)->empty());
}

TEST_F(AdminActionsTest, RerunOfSomeJobsKeepsTheirKeys) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  const std::int64_t id = finished_run(*store, RunState::failure, 1000);
  const std::vector<std::string> keys{".github/workflows/ci.yml/test (linux)", "b.yml/odd \"name\""};
  auto copy_id = store->rerun(id, keys, "admin", 2000);
  ASSERT_TRUE(copy_id && *copy_id);
  auto copy = store->get_run(**copy_id);
  ASSERT_TRUE(copy && *copy);
  EXPECT_EQ((*copy)->only_jobs, keys);
  // What a claim returns carries them too: the worker reads them from there.
  auto claimed = store->claim_next_run("agent-a", 60'000, 2001);
  ASSERT_TRUE(claimed && *claimed);
  EXPECT_EQ((*claimed)->only_jobs, keys);
  EXPECT_EQ(store->actions_of(id)->at(0).detail,
            "new run " + std::to_string(**copy_id) + " for 2 failed jobs");
}

TEST_F(AdminActionsTest, RerunOfAnUnknownRunWritesNothing) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  auto copy_id = store->rerun(42, {}, "admin", 1000);
  ASSERT_TRUE(copy_id);
  EXPECT_FALSE(*copy_id);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM runs"), 0);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM run_actions"), 0);
}

TEST_F(AdminActionsTest, CancelOfAQueuedRunEndsItAndIsRecorded) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  auto id = store->enqueue_run(make_run(), 1000);
  ASSERT_TRUE(id);
  auto done = store->cancel_run(*id, "dave", 1500);
  ASSERT_TRUE(done);
  EXPECT_TRUE(*done);
  auto run = store->get_run(*id);
  EXPECT_EQ((*run)->state, RunState::cancelled);
  EXPECT_EQ((*run)->finished_ms, 1500);
  auto actions = store->actions_of(*id);
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].action, "cancel");
  EXPECT_EQ((*actions)[0].actor, "dave");
  EXPECT_EQ((*actions)[0].at_ms, 1500);
}

TEST_F(AdminActionsTest, CancelOfARunningRunFlagsItForTheWorker) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->enqueue_run(make_run(), 1000));
  auto claimed = store->claim_next_run("agent-a", 60'000, 1001);
  ASSERT_TRUE(claimed && *claimed);
  const std::int64_t id = (*claimed)->id;
  EXPECT_TRUE(store->cancel_run(id, "admin", 1500).value_or(false));
  EXPECT_EQ((*store->get_run(id))->state, RunState::running) << "the worker ends it";
  EXPECT_TRUE(store->cancel_requested(id).value_or(false));
  EXPECT_EQ(store->actions_of(id)->size(), 1u);
}

TEST_F(AdminActionsTest, CancelOfAFinishedOrUnknownRunChangesNothing) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  const std::int64_t id = finished_run(*store, RunState::success, 1000);
  auto done = store->cancel_run(id, "admin", 2000);
  ASSERT_TRUE(done);
  EXPECT_FALSE(*done);
  EXPECT_EQ((*store->get_run(id))->state, RunState::success);
  EXPECT_FALSE(store->cancel_run(999, "admin", 2000).value_or(true));
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM run_actions"), 0);
}

TEST_F(AdminActionsTest, ActionsAreListedOldestFirstPerRun) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  const std::int64_t a = finished_run(*store, RunState::failure, 1000);
  ASSERT_TRUE(store->rerun(a, {}, "first", 2000));
  ASSERT_TRUE(store->rerun(a, {}, "second", 3000));
  auto actions = store->actions_of(a);
  ASSERT_EQ(actions->size(), 2u);
  EXPECT_EQ((*actions)[0].actor, "first");
  EXPECT_EQ((*actions)[1].actor, "second");
  EXPECT_LT((*actions)[0].id, (*actions)[1].id);
}

TEST_F(AdminActionsTest, ActionsSurviveReopening) {
  std::int64_t id = 0;
  {
    auto store = open_store(file_);
    ASSERT_TRUE(store);
    id = *store->enqueue_run(make_run(), 1000);
    ASSERT_TRUE(store->cancel_run(id, "erin", 1100).value_or(false));
  }
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  auto actions = store->actions_of(id);
  ASSERT_TRUE(actions);
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].actor, "erin");
}

}  // namespace
}  // namespace sandci::agent::store
