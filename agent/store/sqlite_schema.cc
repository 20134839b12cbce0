#include "agent/store/sqlite_schema.h"

#include <array>
#include <stdexcept>
#include <string>

namespace sandci::agent::store {

namespace {

// Migration i takes the schema from version i to i + 1. Never edit a released step;
// append a new one. Times are integer ms since the epoch; states are their to_string
// names, readable with the sqlite3 shell.
constexpr std::array<const char*, 7> kMigrations{
    // 0 -> 1: deliveries, runs, jobs and the status outbox.
    R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repository TEXT NOT NULL,
  forge TEXT NOT NULL,
  event TEXT NOT NULL,
  action TEXT NOT NULL,
  ref TEXT NOT NULL,
  sha TEXT NOT NULL,
  base_ref TEXT NOT NULL,
  head_ref TEXT NOT NULL,
  clone_url TEXT NOT NULL,
  from_fork INTEGER NOT NULL,
  payload_json TEXT NOT NULL,
  trigger_source TEXT NOT NULL,
  concurrency_key TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  title TEXT NOT NULL,
  state TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  lease_until_ms INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_state ON runs(state, id);
CREATE INDEX runs_by_concurrency_key ON runs(concurrency_key, state) WHERE concurrency_key <> '';
CREATE INDEX runs_by_repository ON runs(repository, id);

CREATE TABLE deliveries (
  forge TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  repository TEXT NOT NULL,
  event TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  run_id INTEGER REFERENCES runs(id),
  PRIMARY KEY (forge, delivery_id)
);

CREATE TABLE jobs (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  workflow TEXT NOT NULL,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL,
  log_path TEXT NOT NULL,
  image TEXT NOT NULL,
  message TEXT NOT NULL,
  UNIQUE (run_id, key)
);

-- One row per (forge, repository, sha, context): the newest state wins. outcome is due,
-- delivered or refused; delivered_state is what the forge shows now.
CREATE TABLE statuses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repository TEXT NOT NULL,
  forge TEXT NOT NULL,
  sha TEXT NOT NULL,
  context TEXT NOT NULL,
  state TEXT NOT NULL,
  description TEXT NOT NULL,
  target_url TEXT NOT NULL,
  ref TEXT NOT NULL,
  outcome TEXT NOT NULL,
  delivered_state TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  UNIQUE (forge, repository, sha, context)
);
CREATE INDEX statuses_due ON statuses(next_attempt_ms, id) WHERE outcome = 'due';
)sql",
    // 1 -> 2: admin actions. only_jobs (a JSON array of job keys, NULL for every job)
    // limits a re-run to some jobs; run_actions records who cancelled or re-ran what.
    R"sql(
ALTER TABLE runs ADD COLUMN only_jobs TEXT;

CREATE TABLE run_actions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX run_actions_by_run ON run_actions(run_id, id);
)sql",
    // 2 -> 3: the commit each remote action (uses: owner/repo@ref) of a run resolved to.
    R"sql(
CREATE TABLE action_refs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  repository TEXT NOT NULL,
  ref TEXT NOT NULL,
  commit_sha TEXT NOT NULL,
  url TEXT NOT NULL,
  from_cache INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  UNIQUE (run_id, repository, ref)
);
)sql",
    // 3 -> 4: schedules. One row per cron line of a workflow of a repository: the last
    // fire time handled (a run queued for it, or the time the schedule was first seen).
    R"sql(
CREATE TABLE schedules (
  forge TEXT NOT NULL,
  repository TEXT NOT NULL,
  workflow TEXT NOT NULL,
  cron TEXT NOT NULL,
  last_fire_ms INTEGER NOT NULL,
  run_id INTEGER,
  PRIMARY KEY (forge, repository, workflow, cron)
);
)sql",
    // 4 -> 5: since when each outbox row has been waiting for delivery, for the
    // "oldest undelivered status" metric. Rows already due count from their next try.
    R"sql(
ALTER TABLE statuses ADD COLUMN due_since_ms INTEGER NOT NULL DEFAULT 0;
UPDATE statuses SET due_since_ms = next_attempt_ms WHERE outcome = 'due';
)sql",
    // 5 -> 6: the keys of the jobs each job needs (a JSON array), so the run page draws
    // the plan's edges.
    R"sql(
ALTER TABLE jobs ADD COLUMN needs TEXT NOT NULL DEFAULT '[]';
)sql",
    // 6 -> 7: retention. expired_ms is when retention removed a finished run's logs and
    // artifacts and kept its rows as a summary (0: not expired).
    R"sql(
ALTER TABLE runs ADD COLUMN expired_ms INTEGER NOT NULL DEFAULT 0;
)sql",
};

std::expected<std::int64_t, StoreError> read_version(SqliteDb& db,
                                                     const std::filesystem::path& file) {
  auto version = db.query_int("PRAGMA user_version", "read schema version of " + file.string());
  if (!version) return std::unexpected(version.error());
  if (*version > current_schema_version()) {
    return std::unexpected(StoreError{
        file.string() + ": schema version " + std::to_string(*version) +
        " is newer than this sandci understands (" + std::to_string(current_schema_version()) +
        "); run a newer sandci or use another state directory"});
  }
  return version;
}

std::expected<void, StoreError> apply_step(SqliteDb& db, const std::filesystem::path& file,
                                           int target_version) {
  const std::string where = " (" + file.string() + ")";
  if (auto begin = db.exec("BEGIN IMMEDIATE", "migrate: begin" + where); !begin) return begin;
  // Another process may have migrated while we waited for the write lock.
  auto version = read_version(db, file);
  std::expected<void, StoreError> result;
  if (!version) {
    result = std::unexpected(version.error());
  } else if (*version < target_version) {
    const std::string step = std::to_string(*version) + " -> " + std::to_string(*version + 1);
    result = db.exec(kMigrations[static_cast<std::size_t>(*version)], "migrate " + step + where);
    if (result) {
      result = db.exec("PRAGMA user_version = " + std::to_string(*version + 1),
                       "migrate " + step + ": set version" + where);
    }
  }
  if (result) result = db.exec("COMMIT", "migrate: commit" + where);
  if (!result && db.in_transaction()) (void)db.exec("ROLLBACK", "migrate: rollback");
  return result;
}

}  // namespace

int current_schema_version() { return static_cast<int>(kMigrations.size()); }

std::expected<void, StoreError> migrate_schema(SqliteDb& db, const std::filesystem::path& file) {
  return migrate_schema(db, file, current_schema_version());
}

std::expected<void, StoreError> migrate_schema(SqliteDb& db, const std::filesystem::path& file,
                                               int target_version) {
  if (target_version < 0 || target_version > current_schema_version()) {
    throw std::invalid_argument("migrate_schema: no schema version " +
                                std::to_string(target_version));
  }
  for (;;) {
    auto version = read_version(db, file);
    if (!version) return std::unexpected(version.error());
    if (*version >= target_version) return {};
    if (auto step = apply_step(db, file, target_version); !step) return step;
  }
}

}  // namespace sandci::agent::store
