#pragma once
// The SQLite schema and its migrations. The version lives in PRAGMA user_version; each
// step from version N to N+1 runs in its own transaction, so a crash mid-migration
// leaves the file at N, and the next open retries the step.
#include <expected>
#include <filesystem>

#include "agent/store/run_store.h"
#include "agent/store/sqlite_db.h"

namespace sandci::agent::store {

// The version this build writes.
int current_schema_version();

// Brings the file to current_schema_version(). A file from a newer version is refused
// (this build would misread it); `file` only names it in errors.
std::expected<void, StoreError> migrate_schema(SqliteDb& db, const std::filesystem::path& file);
// Brings the file up to `target_version` only (a file already there or past it is left
// alone), so tests can make a file of an older version. A target this build does not
// know is a broken invariant (std::invalid_argument).
std::expected<void, StoreError> migrate_schema(SqliteDb& db, const std::filesystem::path& file,
                                               int target_version);

}  // namespace sandci::agent::store
