#include "agent/store/sqlite_db.h"

namespace sandci::agent::store {

StoreError sqlite_error(sqlite3* db, int code, std::string_view operation) {
  std::string message(operation);
  message += ": ";
  // The connection's message is more precise ("no such table: runs") when it belongs to
  // this failure; otherwise fall back to the code's generic text.
  const char* detail =
      db != nullptr && sqlite3_errcode(db) == code ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  message += detail;
  const char* generic = sqlite3_errstr(code);
  if (std::string_view(detail) != generic) {
    message += " (";
    message += generic;
    message += ")";
  }
  return StoreError{std::move(message)};
}

Statement::~Statement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::expected<bool, StoreError> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(sqlite_error(db_, rc, operation_));
}

std::expected<void, StoreError> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
  }
}

std::string Statement::text(int column) const {
  const auto* bytes = sqlite3_column_text(stmt_, column);
  if (bytes == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(bytes),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

void Statement::bind_one(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void Statement::bind_one(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void Statement::bind_one(int index, std::nullptr_t) { sqlite3_bind_null(stmt_, index); }

std::expected<std::unique_ptr<SqliteDb>, StoreError> SqliteDb::open(
    const std::filesystem::path& file, bool create, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time (the writer thread, or
  // readers under the store's read mutex), so SQLite's own locking is not needed.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  std::unique_ptr<SqliteDb> db(raw != nullptr ? new SqliteDb(raw) : nullptr);
  if (rc != SQLITE_OK) {
    return std::unexpected(sqlite_error(raw, rc, "open " + file.string()));
  }
  sqlite3_extended_result_codes(raw, 0);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  if (auto fk = db->exec("PRAGMA foreign_keys=ON", "enable foreign keys"); !fk) {
    return std::unexpected(fk.error());
  }
  return db;
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

std::expected<void, StoreError> SqliteDb::exec(const std::string& sql, std::string_view operation) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return {};
  std::string message(operation);
  message += ": ";
  message += error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return std::unexpected(StoreError{std::move(message)});
}

std::expected<std::unique_ptr<Statement>, StoreError> SqliteDb::prepare(
    const std::string& sql, std::string_view operation) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return std::unexpected(sqlite_error(db_, rc, operation));
    it = cache_.emplace(sql, stmt).first;
  }
  return std::make_unique<Statement>(db_, it->second, operation);
}

std::expected<std::int64_t, StoreError> SqliteDb::query_int(const std::string& sql,
                                                            std::string_view operation) {
  auto stmt = prepare(sql, operation);
  if (!stmt) return std::unexpected(stmt.error());
  auto row = (*stmt)->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::unexpected(StoreError{std::string(operation) + ": no row"});
  return (*stmt)->int64(0);
}

}  // namespace sandci::agent::store
