// Opening the store: migrations, files it must refuse, and disk errors as values.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <fstream>

#include "agent/store/run_store.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

using namespace sandci::agent::store::testing;
using ::testing::HasSubstr;

class OpenTest : public ::testing::Test {
 protected:
  std::string open_error(const fs::path& file) {
    auto store = open_sqlite_store(file);
    EXPECT_FALSE(store.has_value()) << "opened " << file;
    return store ? std::string() : store.error().message;
  }

  TempDir tmp_;
};

TEST_F(OpenTest, NewFileIsCreatedAtTheCurrentVersionInWalMode) {
  fs::path file = tmp_.path() / "state.db";
  ASSERT_NE(open_store(file), nullptr);
  EXPECT_EQ(query_file(file, "PRAGMA user_version"), sqlite_schema_version());
  EXPECT_GE(sqlite_schema_version(), 1);
  EXPECT_EQ(query_file(file,
                       "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name IN ('runs', 'jobs', 'deliveries', 'statuses')"),
            4);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(OpenTest, MigratesAVersionZeroFileKeepingWhatIsInIt) {
  fs::path file = tmp_.path() / "old.db";
  exec_file(file, "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('kept');");
  ASSERT_EQ(query_file(file, "PRAGMA user_version"), 0);

  auto store = open_store(file);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query_file(file, "PRAGMA user_version"), sqlite_schema_version());
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM notes"), 1);
  auto id = store->enqueue_run(make_run(), 1000);
  ASSERT_TRUE(id) << id.error().message;
  store.reset();

  // Opening again migrates nothing and keeps the run.
  store = open_store(file);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->get_run(*id).value().has_value());
}

TEST_F(OpenTest, AFailedMigrationLeavesTheFileAtItsVersion) {
  fs::path file = tmp_.path() / "clash.db";
  // A table named like one of ours makes step 0 -> 1 fail half-way.
  exec_file(file, "CREATE TABLE jobs (x INTEGER);");
  std::string error = open_error(file);
  EXPECT_THAT(error, HasSubstr("migrate 0 -> 1"));
  EXPECT_THAT(error, HasSubstr(file.string()));
  EXPECT_EQ(query_file(file, "PRAGMA user_version"), 0);
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'"), 0)
      << "the step's transaction was rolled back";
}

TEST_F(OpenTest, RefusesAFileFromANewerSchema) {
  fs::path file = tmp_.path() / "future.db";
  ASSERT_NE(open_store(file), nullptr);
  const int newer = sqlite_schema_version() + 1;
  exec_file(file, "PRAGMA user_version = " + std::to_string(newer));

  std::string error = open_error(file);
  EXPECT_THAT(error, HasSubstr("schema version " + std::to_string(newer)));
  EXPECT_THAT(error, HasSubstr("newer"));
  EXPECT_THAT(error, HasSubstr(file.string()));
  EXPECT_EQ(query_file(file, "PRAGMA user_version"), newer) << "the file is left alone";
}

TEST_F(OpenTest, CorruptFileIsAClearError) {
  fs::path file = tmp_.path() / "corrupt.db";
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out << "not sqlite ";
  }
  std::string error = open_error(file);
  EXPECT_THAT(error, HasSubstr("not a database"));
  EXPECT_THAT(error, HasSubstr(file.string()));
}

TEST_F(OpenTest, PathUnderAFileIsAClearError) {
  fs::path parent = tmp_.path() / "plain-file";
  std::ofstream(parent) << "x";
  std::string error = open_error(parent / "state.db");
  EXPECT_THAT(error, HasSubstr("unable to open"));
  EXPECT_THAT(error, HasSubstr((parent / "state.db").string()));
}

TEST_F(OpenTest, DirectoryIsAClearError) {
  std::string error = open_error(tmp_.path());
  EXPECT_THAT(error, HasSubstr(tmp_.path().string()));
}

// A full disk, made real with the file size limit (we run as root, so permissions
// cannot stand in for it): writes past the limit fail with EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of death
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
};

TEST_F(OpenTest, FullDiskIsAStoreErrorAndTheStoreWorksOnceThereIsRoom) {
  fs::path file = tmp_.path() / "state.db";
  auto store = open_store(file);
  ASSERT_NE(store, nullptr);
  NewRun big = make_run();
  big.payload_json = std::string(64 * 1024, 'x');

  std::optional<StoreError> failure;
  int accepted = 0;
  {
    FileSizeLimit limit(512 * 1024);
    for (int i = 0; i < 100 && !failure; ++i) {
      auto result = store->accept_delivery(make_delivery("big-" + std::to_string(i)), big);
      if (result) {
        ++accepted;
      } else {
        failure = result.error();
      }
    }
  }
  ASSERT_TRUE(failure.has_value()) << "the size limit never bit";
  EXPECT_THAT(failure->message, HasSubstr("accept_delivery"));
  EXPECT_LT(accepted, 100);

  // What was acknowledged is there; the failed delivery is not half-stored.
  auto after = store->accept_delivery(make_delivery("after"), make_run());
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(store->count_runs(RunState::queued).value(), accepted + 1);
  store.reset();
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM deliveries"), accepted + 1);
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM runs"), accepted + 1);
}

}  // namespace
}  // namespace sandci::agent::store
