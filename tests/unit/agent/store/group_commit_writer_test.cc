// The group-commit writer on its own, over a real SQLite file: every caller is told
// exactly its own write's result (never a neighbour's, never twice), and a commit that
// fails fails exactly the writes of that transaction.
#include "agent/store/group_commit_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

using namespace sandci::agent::store::testing;

// A writer on a fresh file with one table of named rows, and a second table whose
// foreign key is only checked at COMMIT (so one write can make a whole commit fail).
std::unique_ptr<GroupCommitWriter> open_writer(const fs::path& file, std::size_t max_batch = 4096) {
  auto db = SqliteDb::open(file, /*create=*/true, 5000);
  if (!db) {
    ADD_FAILURE() << db.error().message;
    return nullptr;
  }
  auto made = (*db)->exec(
      "CREATE TABLE rows (name TEXT PRIMARY KEY);"
      "CREATE TABLE parents (id INTEGER PRIMARY KEY);"
      "CREATE TABLE children (name TEXT PRIMARY KEY, "
      "  parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED);",
      "create tables");
  if (!made) {
    ADD_FAILURE() << made.error().message;
    return nullptr;
  }
  return std::make_unique<GroupCommitWriter>(std::move(*db), max_batch);
}

// Inserts `name` into rows; fails (after the insert, which its savepoint then undoes)
// when `fail` is set, with an error naming the row.
GroupCommitWriter::Work insert_row(std::string name, bool fail = false) {
  return [name = std::move(name), fail](SqliteDb& db) -> std::expected<void, StoreError> {
    auto stmt = db.prepare("INSERT INTO rows (name) VALUES (?)", "insert row");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(name);
    if (auto done = (*stmt)->run(); !done) return done;
    if (fail) return std::unexpected(StoreError{"refused " + name});
    return {};
  };
}

bool failing(int thread, int i) { return (thread + i) % 7 == 3; }

TEST(GroupCommitWriterTest, ManyConcurrentWritersAreEachToldTheirOwnResult) {
  TempDir tmp;
  const fs::path file = tmp.path() / "writer.db";
  auto writer = open_writer(file);
  ASSERT_NE(writer, nullptr);
  constexpr int kThreads = 16, kPerThread = 150;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "row-" + std::to_string(t) + "-" + std::to_string(i);
        auto result = writer->write("insert", insert_row(name, failing(t, i)));
        // Success exactly when this write succeeds; a failure names this very row.
        if (result.has_value() == failing(t, i)) ++wrong;
        if (!result && result.error().message != "refused " + name) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  int succeeded = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i) succeeded += !failing(t, i);
  const auto transactions = writer->transactions();
  writer.reset();
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM rows"), succeeded);
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM rows WHERE name = 'row-0-3'"), 0) << "a failed write is undone";
  EXPECT_GE(transactions, 1u);
  EXPECT_LE(transactions, static_cast<std::uint64_t>(kThreads * kPerThread));
}

TEST(GroupCommitWriterTest, SubmitTellsEachCallerOnceWithItsOwnResultAfterTheCommit) {
  TempDir tmp;
  const fs::path file = tmp.path() / "writer.db";
  auto writer = open_writer(file);
  ASSERT_NE(writer, nullptr);
  constexpr int kThreads = 8, kPerThread = 200;
  std::mutex mutex;
  std::map<std::string, int> told;          // name -> how many times its callback ran
  std::map<std::string, bool> succeeded;    // name -> what it was told
  std::map<std::string, std::int64_t> rows_seen;  // name -> its row on disk when told
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "sub-" + std::to_string(t) + "-" + std::to_string(i);
        writer->submit("insert", insert_row(name, failing(t, i)),
                       [&, name, file](std::expected<void, StoreError> result) {
                         // Told only after the commit: another connection sees the row already.
                         const auto on_disk =
                             query_file(file, "SELECT COUNT(*) FROM rows WHERE name = '" + name + "'");
                         std::lock_guard lock(mutex);
                         ++told[name];
                         succeeded[name] = result.has_value();
                         rows_seen[name] = on_disk;
                         if (!result) {
                           EXPECT_EQ(result.error().message, "refused " + name);
                         }
                       });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  writer.reset();  // finishes (and tells) every write submitted
  ASSERT_EQ(told.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i) {
      const std::string name = "sub-" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_EQ(told[name], 1) << name;
      EXPECT_EQ(succeeded[name], !failing(t, i)) << name;
      EXPECT_EQ(rows_seen[name], failing(t, i) ? 0 : 1) << name;
    }
}

// Blocks the writer thread inside a transaction until released, so a test can decide
// what the next transaction holds.
struct Gate {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  GroupCommitWriter::Work work(std::string name) {
    return [this, inner = insert_row(std::move(name))](SqliteDb& db) {
      entered.set_value();
      released.wait();
      return inner(db);
    };
  }
};

TEST(GroupCommitWriterTest, AFailedCommitFailsExactlyTheWritesOfItsTransaction) {
  TempDir tmp;
  const fs::path file = tmp.path() / "writer.db";
  auto writer = open_writer(file);
  ASSERT_NE(writer, nullptr);
  std::mutex mutex;
  std::map<std::string, std::expected<void, StoreError>> results;
  std::map<std::string, int> told;
  auto record = [&](std::string name) {
    return [&, name](std::expected<void, StoreError> result) {
      std::lock_guard lock(mutex);
      ++told[name];
      results.insert_or_assign(name, std::move(result));
    };
  };
  auto submit = [&](const std::string& name, GroupCommitWriter::Work work) {
    writer->submit("test write", std::move(work), record(name));
  };

  // Transaction 1: the first gate alone.
  Gate first, second;
  submit("gate-1", first.work("gate-1"));
  first.entered.get_future().wait();
  // Transaction 2: the second gate, two good writes and one whose foreign key fails at COMMIT.
  submit("gate-2", second.work("gate-2"));
  submit("a", insert_row("a"));
  submit("b", insert_row("b"));
  submit("orphan", [](SqliteDb& db) -> std::expected<void, StoreError> {
    auto stmt = db.prepare("INSERT INTO children (name, parent) VALUES ('orphan', 999)", "insert child");
    if (!stmt) return std::unexpected(stmt.error());
    return (*stmt)->run();
  });
  auto entered_second = second.entered.get_future();
  first.release.set_value();
  entered_second.wait();
  // Transaction 3: submitted while the second one runs.
  submit("c", insert_row("c"));
  submit("d", insert_row("d"));
  second.release.set_value();
  writer.reset();

  ASSERT_EQ(told.size(), 7u);
  for (const auto& [name, count] : told) EXPECT_EQ(count, 1) << name;
  EXPECT_TRUE(results.at("gate-1").has_value());
  for (const char* name : {"gate-2", "a", "b", "orphan"}) {
    ASSERT_FALSE(results.at(name).has_value()) << name << " was in the transaction whose COMMIT failed";
    EXPECT_NE(results.at(name).error().message.find("test write: commit"), std::string::npos)
        << results.at(name).error().message;
  }
  EXPECT_TRUE(results.at("c").has_value()) << results.at("c").error().message;
  EXPECT_TRUE(results.at("d").has_value()) << results.at("d").error().message;
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM rows"), 3);  // gate-1, c, d
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM rows WHERE name IN ('gate-2', 'a', 'b')"), 0);
  EXPECT_EQ(query_file(file, "SELECT COUNT(*) FROM children"), 0);
}

}  // namespace
}  // namespace sandci::agent::store
