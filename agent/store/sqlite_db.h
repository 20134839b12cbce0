#pragma once
// A thin RAII layer over one sqlite3 connection: errors become StoreError values that
// name the operation, and prepared statements are cached per connection (the hot
// accept path prepares nothing).
#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "agent/store/run_store.h"

namespace sandci::agent::store {

// "<operation>: <sqlite message> (<code name>)".
StoreError sqlite_error(sqlite3* db, int code, std::string_view operation);

// A cached prepared statement in use: bind, step, read columns. Resets and clears its
// bindings when it goes out of scope, so the cached statement is ready for the next use.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view operation)
      : db_(db), stmt_(stmt), operation_(operation) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds parameters 1..n in order.
  template <typename... Args>
  Statement& bind(const Args&... args) {
    int index = 0;
    (bind_one(++index, args), ...);
    return *this;
  }

  // Steps once: true with a row, false when done.
  std::expected<bool, StoreError> step();
  // Steps to the end (for INSERT/UPDATE/DELETE).
  std::expected<void, StoreError> run();

  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const;
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  void bind_one(int index, std::int64_t value);
  void bind_one(int index, int value) { bind_one(index, static_cast<std::int64_t>(value)); }
  void bind_one(int index, bool value) { bind_one(index, static_cast<std::int64_t>(value)); }
  void bind_one(int index, std::string_view value);
  void bind_one(int index, const std::string& value) { bind_one(index, std::string_view(value)); }
  void bind_one(int index, const char* value) { bind_one(index, std::string_view(value)); }
  void bind_one(int index, std::nullptr_t);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string_view operation_;
};

class SqliteDb {
 public:
  // Opens (creating if `create`) and applies busy timeout and foreign keys.
  static std::expected<std::unique_ptr<SqliteDb>, StoreError> open(
      const std::filesystem::path& file, bool create, int busy_timeout_ms);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows the caller needs.
  std::expected<void, StoreError> exec(const std::string& sql, std::string_view operation);
  // A cached statement for `sql`; `operation` names it in errors and must outlive it
  // (string literals).
  std::expected<std::unique_ptr<Statement>, StoreError> prepare(const std::string& sql,
                                                                std::string_view operation);
  // Runs a statement yielding one integer (PRAGMA user_version, COUNT(*)).
  std::expected<std::int64_t, StoreError> query_int(const std::string& sql,
                                                    std::string_view operation);

  std::int64_t changes() const { return sqlite3_changes64(db_); }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  // False once SQLite rolled back the open transaction by itself (disk full, I/O error).
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* handle() const { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace sandci::agent::store
