#pragma once
// Shared by the store tests: a temp dir removed even when a test fails, a store opened
// on a real SQLite file in it, and small record builders.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "agent/store/run_store.h"
#include "support/temp_dir.h"

namespace sandci::agent::store::testing {

namespace fs = std::filesystem;

// sandci::testing::TempDir named sandci-store-XXXXXX: a leftover folder names these tests.
class TempDir : public ::sandci::testing::TempDir {
 public:
  TempDir() : ::sandci::testing::TempDir("sandci-store-") {}
};

inline std::unique_ptr<RunStore> open_store(const fs::path& file,
                                            const SqliteStoreOptions& options = {}) {
  auto store = open_sqlite_store(file, options);
  if (!store) {
    ADD_FAILURE() << "open_sqlite_store: " << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

inline NewRun make_run(std::string repository = "acme/app", std::string ref = "refs/heads/main",
                       std::string concurrency_key = "") {
  NewRun run;
  run.repository = std::move(repository);
  run.forge = "github";
  run.event = "push";
  run.ref = std::move(ref);
  run.sha = "0123456789abcdef0123456789abcdef01234567";
  run.clone_url = "https://example.invalid/acme/app.git";
  run.payload_json = R"({"ref":"refs/heads/main"})";
  run.trigger = "webhook";
  run.concurrency_key = std::move(concurrency_key);
  run.title = "Fix the build";
  return run;
}

inline DeliveryRecord make_delivery(std::string id, std::int64_t received_ms = 1000) {
  return DeliveryRecord{"github", std::move(id), "acme/app", "push", received_ms, "queued"};
}

// Runs one query yielding an integer straight on the file (as another process would).
inline std::int64_t query_file(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::int64_t value = -1;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

inline void exec_file(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

}  // namespace sandci::agent::store::testing
