// Schema version 3: which commit each remote action of a run resolved to, on a real
// SQLite file, including a file migrated from version 2.
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

const std::string kV1(40, 'a');
const std::string kV2(40, 'b');

class ActionRefsTest : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path file_ = dir_.path() / "state.db";
};

TEST_F(ActionRefsTest, RecordsEachRefOnceInTheOrderFirstSeen) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  auto run = store->enqueue_run(make_run(), 100);
  auto other = store->enqueue_run(make_run("acme/other"), 100);
  ASSERT_TRUE(run && other);
  ASSERT_TRUE(store->put_action_ref({*run, "acme/greet", "v1", kV1, "https://github.com/acme/greet", false, 200}));
  ASSERT_TRUE(store->put_action_ref({*run, "acme/lint", "main", kV2, "https://github.com/acme/lint", true, 210}));
  ASSERT_TRUE(store->put_action_ref({*other, "acme/greet", "v1", kV2, "https://github.com/acme/greet", false, 220}));
  // The same ref again (a re-queued run resolves anew): the newest answer stays.
  ASSERT_TRUE(store->put_action_ref({*run, "acme/greet", "v1", kV2, "https://github.com/acme/greet", false, 230}));

  auto refs = store->action_refs_of(*run);
  ASSERT_TRUE(refs) << refs.error().message;
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].repository, "acme/greet");
  EXPECT_EQ((*refs)[0].ref, "v1");
  EXPECT_EQ((*refs)[0].commit, kV2);
  EXPECT_EQ((*refs)[0].at_ms, 230);
  EXPECT_FALSE((*refs)[0].from_cache);
  EXPECT_EQ((*refs)[1].repository, "acme/lint");
  EXPECT_EQ((*refs)[1].url, "https://github.com/acme/lint");
  EXPECT_TRUE((*refs)[1].from_cache);
  auto others = store->action_refs_of(*other);
  ASSERT_TRUE(others);
  ASSERT_EQ(others->size(), 1u);
  EXPECT_EQ((*others)[0].commit, kV2);
  auto none = store->action_refs_of(999);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(ActionRefsTest, LastUsesGiveTheNewestRecordOfEachCommitOverAllRuns) {
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  auto run = store->enqueue_run(make_run(), 100);
  auto other = store->enqueue_run(make_run("acme/other"), 100);
  ASSERT_TRUE(run && other);
  ASSERT_TRUE(store->put_action_ref({*run, "acme/greet", "v1", kV1, "https://x/acme/greet", false, 200}));
  ASSERT_TRUE(store->put_action_ref({*run, "acme/greet", "main", kV2, "https://x/acme/greet", false, 210}));
  // The same commit written with other case, by another run, later.
  ASSERT_TRUE(store->put_action_ref({*other, "Acme/Greet", "v1", kV1, "https://x/Acme/Greet", false, 500}));

  auto uses = store->action_last_uses();
  ASSERT_TRUE(uses) << uses.error().message;
  ASSERT_EQ(uses->size(), 2u);
  EXPECT_EQ((*uses)[0].repository, "acme/greet");
  EXPECT_EQ((*uses)[0].commit, kV1);
  EXPECT_EQ((*uses)[0].at_ms, 500);
  EXPECT_EQ((*uses)[1].repository, "acme/greet");
  EXPECT_EQ((*uses)[1].commit, kV2);
  EXPECT_EQ((*uses)[1].at_ms, 210);
}

TEST_F(ActionRefsTest, MigratesAVersionTwoFile) {
  {
    auto db = SqliteDb::open(file_, /*create=*/true, 5000);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(migrate_schema(**db, file_, 2));
  }
  ASSERT_EQ(query_file(file_, "PRAGMA user_version"), 2);
  auto store = open_store(file_);
  ASSERT_TRUE(store);
  EXPECT_GE(query_file(file_, "PRAGMA user_version"), 3);
  EXPECT_EQ(query_file(file_, "SELECT COUNT(*) FROM action_refs"), 0);
  auto run = store->enqueue_run(make_run(), 100);
  ASSERT_TRUE(run);
  EXPECT_TRUE(store->put_action_ref({*run, "acme/greet", "v1", kV1, "git://127.0.0.1/acme/greet", false, 200}));
}

}  // namespace
}  // namespace sandci::agent::store
