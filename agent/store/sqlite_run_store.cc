#include "agent/store/sqlite_run_store.h"

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/store/sqlite_schema.h"

namespace sandci::agent::store {

namespace {

using Db = SqliteDb;

constexpr const char* kRunColumns =
    "id, repository, forge, event, action, ref, sha, base_ref, head_ref, clone_url, from_fork, "
    "payload_json, trigger_source, concurrency_key, delivery_id, title, state, created_ms, "
    "started_ms, finished_ms, owner, lease_until_ms, attempt, cancel_requested, message, only_jobs, expired_ms";

constexpr const char* kJobColumns =
    "run_id, key, workflow, name, state, started_ms, finished_ms, log_path, image, message, needs";

constexpr const char* kActionColumns = "id, run_id, action, actor, at_ms, detail";

constexpr const char* kStatusColumns =
    "id, repository, forge, sha, context, state, description, target_url, ref, attempts, "
    "next_attempt_ms, last_error";

// Holds a claim's run: running, same owner, same attempt.
constexpr const char* kClaimHolds = "id = ? AND owner = ? AND attempt = ? AND state = 'running'";

std::string sql(std::string_view a, std::string_view b = {}, std::string_view c = {},
                std::string_view d = {}) {
  std::string out(a);
  out += b;
  out += c;
  out += d;
  return out;
}

// only_jobs is NULL for every job, else a JSON array of job keys.
std::string job_keys_json(const std::vector<std::string>& keys) { return nlohmann::json(keys).dump(); }

std::vector<std::string> read_job_keys(const Statement& row, int column) {
  std::vector<std::string> keys;
  if (row.is_null(column)) return keys;
  // Only this code writes the column; anything but an array of strings is a hand edit.
  auto parsed = nlohmann::json::parse(row.text(column), nullptr, false);
  if (!parsed.is_array()) return keys;
  for (const auto& key : parsed)
    if (key.is_string()) keys.push_back(key.get<std::string>());
  return keys;
}

RunRecord read_run(const Statement& row) {
  RunRecord run;
  int c = 0;
  run.id = row.int64(c++);
  run.repository = row.text(c++);
  run.forge = row.text(c++);
  run.event = row.text(c++);
  run.action = row.text(c++);
  run.ref = row.text(c++);
  run.sha = row.text(c++);
  run.base_ref = row.text(c++);
  run.head_ref = row.text(c++);
  run.clone_url = row.text(c++);
  run.from_fork = row.int64(c++) != 0;
  run.payload_json = row.text(c++);
  run.trigger = row.text(c++);
  run.concurrency_key = row.text(c++);
  run.delivery_id = row.text(c++);
  run.title = row.text(c++);
  // Only this code writes states; an unknown one means a hand-edited file.
  run.state = parse_run_state(row.text(c++)).value_or(RunState::error);
  run.created_ms = row.int64(c++);
  run.started_ms = row.int64(c++);
  run.finished_ms = row.int64(c++);
  run.owner = row.text(c++);
  run.lease_until_ms = row.int64(c++);
  run.attempt = row.int64(c++);
  run.cancel_requested = row.int64(c++) != 0;
  run.message = row.text(c++);
  run.only_jobs = read_job_keys(row, c++);
  run.expired_ms = row.int64(c++);
  return run;
}

RunAction read_action(const Statement& row) {
  RunAction action;
  int c = 0;
  action.id = row.int64(c++);
  action.run_id = row.int64(c++);
  action.action = row.text(c++);
  action.actor = row.text(c++);
  action.at_ms = row.int64(c++);
  action.detail = row.text(c++);
  return action;
}

JobRecord read_job(const Statement& row) {
  JobRecord job;
  int c = 0;
  job.run_id = row.int64(c++);
  job.key = row.text(c++);
  job.workflow = row.text(c++);
  job.name = row.text(c++);
  job.state = parse_job_state(row.text(c++)).value_or(JobState::error);
  job.started_ms = row.int64(c++);
  job.finished_ms = row.int64(c++);
  job.log_path = row.text(c++);
  job.image = row.text(c++);
  job.message = row.text(c++);
  job.needs = read_job_keys(row, c++);
  return job;
}

StatusRecord read_status(const Statement& row) {
  StatusRecord status;
  int c = 0;
  status.id = row.int64(c++);
  status.repository = row.text(c++);
  status.forge = row.text(c++);
  status.sha = row.text(c++);
  status.context = row.text(c++);
  status.state = row.text(c++);
  status.description = row.text(c++);
  status.target_url = row.text(c++);
  status.ref = row.text(c++);
  status.attempts = static_cast<int>(row.int64(c++));
  status.next_attempt_ms = row.int64(c++);
  status.last_error = row.text(c++);
  return status;
}

// Steps `stmt` to the end, turning each row into a record.
template <typename Record, typename Reader>
std::expected<std::vector<Record>, StoreError> collect(Statement& stmt, Reader reader) {
  std::vector<Record> out;
  for (;;) {
    auto row = stmt.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return out;
    out.push_back(reader(stmt));
  }
}

// Runs a statement that changes rows; returns how many it changed.
template <typename... Args>
std::expected<std::int64_t, StoreError> change(Db& db, const std::string& text,
                                               std::string_view operation, const Args&... args) {
  auto stmt = db.prepare(text, operation);
  if (!stmt) return std::unexpected(stmt.error());
  (*stmt)->bind(args...);
  if (auto done = (*stmt)->run(); !done) return std::unexpected(done.error());
  return db.changes();
}

std::expected<std::int64_t, StoreError> insert_run(Db& db, const NewRun& run,
                                                   std::int64_t created_ms,
                                                   std::string_view operation) {
  auto changed = change(
      db,
      "INSERT INTO runs (repository, forge, event, action, ref, sha, base_ref, head_ref, "
      "clone_url, from_fork, payload_json, trigger_source, concurrency_key, delivery_id, title, "
      "state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
      operation, run.repository, run.forge, run.event, run.action, run.ref, run.sha, run.base_ref,
      run.head_ref, run.clone_url, run.from_fork, run.payload_json, run.trigger,
      run.concurrency_key, run.delivery_id, run.title, created_ms);
  if (!changed) return std::unexpected(changed.error());
  const std::int64_t id = db.last_insert_rowid();
  if (!run.only_jobs.empty()) {
    auto limited = change(db, "UPDATE runs SET only_jobs = ? WHERE id = ?", operation,
                          job_keys_json(run.only_jobs), id);
    if (!limited) return std::unexpected(limited.error());
  }
  return id;
}

std::expected<void, StoreError> insert_action(Db& db, const RunAction& action,
                                              std::string_view operation) {
  auto inserted = change(db,
                         "INSERT INTO run_actions (run_id, action, actor, at_ms, detail) "
                         "VALUES (?, ?, ?, ?, ?)",
                         operation, action.run_id, action.action, action.actor, action.at_ms,
                         action.detail);
  if (!inserted) return std::unexpected(inserted.error());
  return {};
}

// A queued run is cancelled at once; a running one is flagged for its worker. True if
// either happened.
std::expected<bool, StoreError> cancel_in(Db& db, std::int64_t run_id, std::int64_t now_ms) {
  auto cancelled = change(db,
                          "UPDATE runs SET state = 'cancelled', finished_ms = ?, "
                          "message = 'cancelled on request' WHERE id = ? AND state = 'queued'",
                          "request_cancel: cancel queued run", now_ms, run_id);
  if (!cancelled) return std::unexpected(cancelled.error());
  if (*cancelled == 1) return true;
  auto flagged =
      change(db, "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
             "request_cancel: flag running run", run_id);
  if (!flagged) return std::unexpected(flagged.error());
  return *flagged == 1;
}

std::expected<bool, StoreError> claim_holds(Db& db, const Claim& claim,
                                            std::string_view operation) {
  auto stmt = db.prepare(sql("SELECT 1 FROM runs WHERE ", kClaimHolds), operation);
  if (!stmt) return std::unexpected(stmt.error());
  (*stmt)->bind(claim.run_id, claim.owner, claim.attempt);
  return (*stmt)->step();
}

std::expected<std::optional<RunRecord>, StoreError> select_run(Db& db, std::int64_t id) {
  auto stmt = db.prepare(sql("SELECT ", kRunColumns, " FROM runs WHERE id = ?"), "get_run");
  if (!stmt) return std::unexpected(stmt.error());
  (*stmt)->bind(id);
  auto row = (*stmt)->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::nullopt;
  return read_run(**stmt);
}

// What recover() does to one interrupted run and its unfinished jobs.
struct Interruption {
  RunState run_state;
  JobState job_state;
  const char* message;
};

Interruption interruption_for(const RunRecord& run, bool requeue) {
  if (run.cancel_requested) {
    return {RunState::cancelled, JobState::cancelled, "cancelled: the agent stopped"};
  }
  if (requeue) {
    return {RunState::queued, JobState::cancelled, "re-queued after the agent stopped"};
  }
  return {RunState::error, JobState::error, "interrupted: the agent stopped"};
}

std::expected<void, StoreError> interrupt(Db& db, const RunRecord& run, bool requeue,
                                          std::int64_t now_ms) {
  const Interruption what = interruption_for(run, requeue);
  std::expected<std::int64_t, StoreError> changed;
  if (what.run_state == RunState::queued) {
    changed = change(db,
                     "UPDATE runs SET state = 'queued', owner = '', lease_until_ms = 0, "
                     "started_ms = 0, message = ? WHERE id = ?",
                     "recover: re-queue run", what.message, run.id);
  } else {
    changed = change(db,
                     "UPDATE runs SET state = ?, finished_ms = ?, lease_until_ms = 0, "
                     "message = ? WHERE id = ?",
                     "recover: end run", to_string(what.run_state), now_ms, what.message, run.id);
  }
  if (!changed) return std::unexpected(changed.error());
  changed = change(db,
                   "UPDATE jobs SET state = ?, finished_ms = ?, message = ? "
                   "WHERE run_id = ? AND state IN ('queued', 'running')",
                   "recover: end jobs", to_string(what.job_state), now_ms,
                   "interrupted: the agent stopped", run.id);
  if (!changed) return std::unexpected(changed.error());
  return {};
}

// accept_delivery_runs()'s transaction: the delivery (unique on forge + id), then its
// runs unless it is a duplicate; `accepted` says what happened.
std::expected<void, StoreError> accept_in(Db& db, const DeliveryRecord& delivery, const std::vector<NewRun>& runs,
                                          RunStore::Accepted& accepted) {
  accepted = RunStore::Accepted{};
  auto inserted =
      change(db,
             "INSERT INTO deliveries (forge, delivery_id, repository, event, "
             "received_ms, outcome) VALUES (?, ?, ?, ?, ?, ?) "
             "ON CONFLICT (forge, delivery_id) DO NOTHING",
             "accept_delivery: insert delivery", delivery.forge, delivery.delivery_id, delivery.repository,
             delivery.event, delivery.received_ms, delivery.outcome);
  if (!inserted) return std::unexpected(inserted.error());
  accepted.duplicate = *inserted == 0;
  if (accepted.duplicate) return {};
  for (const NewRun& run : runs) {
    auto id = insert_run(db, run, delivery.received_ms, "accept_delivery: insert run");
    if (!id) return std::unexpected(id.error());
    accepted.run_ids.push_back(*id);
  }
  if (accepted.run_ids.empty()) return {};
  // The delivery links to its first run.
  auto linked = change(db, "UPDATE deliveries SET run_id = ? WHERE forge = ? AND delivery_id = ?",
                       "accept_delivery: link run", accepted.run_ids.front(), delivery.forge, delivery.delivery_id);
  if (!linked) return std::unexpected(linked.error());
  accepted.run_id = accepted.run_ids.front();
  return {};
}

// Inserts or replaces the job (run_id, key).
std::expected<void, StoreError> upsert_job(Db& db, const JobRecord& job) {
  auto changed = change(
      db,
      sql("INSERT INTO jobs (", kJobColumns,
          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
          "workflow = excluded.workflow, name = excluded.name, state = excluded.state, "
          "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms, "
          "log_path = excluded.log_path, image = excluded.image, message = excluded.message, "
          "needs = excluded.needs"),
      "put_job", job.run_id, job.key, job.workflow, job.name, to_string(job.state), job.started_ms, job.finished_ms,
      job.log_path, job.image, job.message, job_keys_json(job.needs));
  if (!changed) return std::unexpected(changed.error());
  return {};
}

// put_status()'s write: the newest state replaces the row; it is due unless the forge
// already shows it.
std::expected<void, StoreError> upsert_status(Db& db, const StatusRecord& status, std::int64_t now_ms) {
  auto changed = change(
      db,
      "INSERT INTO statuses (repository, forge, sha, context, state, description, target_url, "
      "ref, outcome, next_attempt_ms, due_since_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'due', "
      "?9, ?9) "
      "ON CONFLICT (forge, repository, sha, context) DO UPDATE SET state = excluded.state, "
      "description = excluded.description, target_url = excluded.target_url, "
      "ref = excluded.ref, attempts = 0, next_attempt_ms = excluded.next_attempt_ms, "
      "last_error = '', outcome = CASE WHEN excluded.state = statuses.delivered_state "
      "THEN 'delivered' ELSE 'due' END, "
      // A newer state of a row still waiting keeps its age: the key has waited since then.
      "due_since_ms = CASE WHEN statuses.outcome = 'due' THEN statuses.due_since_ms "
      "ELSE excluded.due_since_ms END",
      "put_status", status.repository, status.forge, status.sha, status.context, status.state, status.description,
      status.target_url, status.ref, now_ms);
  if (!changed) return std::unexpected(changed.error());
  return {};
}

}  // namespace

SqliteRunStore::SqliteRunStore(std::unique_ptr<SqliteDb> writer, std::unique_ptr<SqliteDb> reader,
                               std::size_t max_batch)
    : writer_(std::move(writer), max_batch), reader_(std::move(reader)) {}

std::expected<RunStore::Accepted, StoreError> SqliteRunStore::accept_delivery(
    const DeliveryRecord& delivery, const std::optional<NewRun>& run) {
  return accept_delivery_runs(delivery, run ? std::vector<NewRun>{*run} : std::vector<NewRun>{});
}

std::expected<RunStore::Accepted, StoreError> SqliteRunStore::accept_delivery_runs(
    const DeliveryRecord& delivery, const std::vector<NewRun>& runs) {
  Accepted accepted;
  auto written = writer_.write("accept_delivery", [&](Db& db) { return accept_in(db, delivery, runs, accepted); });
  if (!written) return std::unexpected(written.error());
  return accepted;
}

void SqliteRunStore::accept_delivery_runs_then(const DeliveryRecord& delivery, const std::vector<NewRun>& runs,
                                               AcceptedDone done) {
  // The caller does not wait: the work owns copies of what it writes.
  auto accepted = std::make_shared<Accepted>();
  writer_.submit(
      "accept_delivery",
      [accepted, delivery, runs](Db& db) { return accept_in(db, delivery, runs, *accepted); },
      [accepted, done = std::move(done)](std::expected<void, StoreError> written) {
        if (!written) return done(std::unexpected(written.error()));
        done(std::move(*accepted));
      });
}

std::expected<std::optional<std::int64_t>, StoreError> SqliteRunStore::schedule_last_fire(
    const ScheduleKey& key) {
  return read([&](Db& db) -> std::expected<std::optional<std::int64_t>, StoreError> {
    auto stmt = db.prepare(
        "SELECT last_fire_ms FROM schedules WHERE forge = ? AND repository = ? AND workflow = ? AND cron = ?",
        "schedule_last_fire");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(key.forge, key.repository, key.workflow, key.cron);
    auto row = (*stmt)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    return (*stmt)->int64(0);
  });
}

std::expected<bool, StoreError> SqliteRunStore::schedule_first_seen(const ScheduleKey& key,
                                                                    std::int64_t seen_ms) {
  bool recorded = false;
  auto written = writer_.write("schedule_first_seen", [&](Db& db) -> std::expected<void, StoreError> {
    auto inserted = change(db,
                           "INSERT INTO schedules (forge, repository, workflow, cron, last_fire_ms) "
                           "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           "schedule_first_seen", key.forge, key.repository, key.workflow, key.cron, seen_ms);
    if (!inserted) return std::unexpected(inserted.error());
    recorded = *inserted == 1;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return recorded;
}

std::expected<std::optional<std::int64_t>, StoreError> SqliteRunStore::record_schedule_fire(
    const ScheduleKey& key, std::int64_t fire_ms, const NewRun& run, std::int64_t now_ms) {
  std::optional<std::int64_t> run_id;
  auto written = writer_.write("record_schedule_fire", [&](Db& db) -> std::expected<void, StoreError> {
    run_id.reset();
    // The fence: only a fire time later than the one recorded moves the row.
    auto moved = change(db,
                        "INSERT INTO schedules (forge, repository, workflow, cron, last_fire_ms) "
                        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (forge, repository, workflow, cron) "
                        "DO UPDATE SET last_fire_ms = ?5 WHERE last_fire_ms < ?5",
                        "record_schedule_fire: move last fire", key.forge, key.repository, key.workflow,
                        key.cron, fire_ms);
    if (!moved) return std::unexpected(moved.error());
    if (*moved == 0) return {};
    auto id = insert_run(db, run, now_ms, "record_schedule_fire: insert run");
    if (!id) return std::unexpected(id.error());
    auto linked = change(db,
                         "UPDATE schedules SET run_id = ? WHERE forge = ? AND repository = ? AND workflow = ? "
                         "AND cron = ?",
                         "record_schedule_fire: link run", *id, key.forge, key.repository, key.workflow, key.cron);
    if (!linked) return std::unexpected(linked.error());
    run_id = *id;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return run_id;
}

std::expected<void, StoreError> SqliteRunStore::forget_schedules(const std::string& forge,
                                                                 const std::string& repository,
                                                                 const std::vector<ScheduleKey>& keep) {
  std::vector<ScheduleKey> rows;
  auto listed = read([&](Db& db) -> std::expected<void, StoreError> {
    auto stmt = db.prepare("SELECT workflow, cron FROM schedules WHERE forge = ? AND repository = ?",
                           "forget_schedules: list");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(forge, repository);
    for (;;) {
      auto row = (*stmt)->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return {};
      rows.push_back({forge, repository, (*stmt)->text(0), (*stmt)->text(1)});
    }
  });
  if (!listed) return std::unexpected(listed.error());
  std::erase_if(rows, [&](const ScheduleKey& row) {
    return std::any_of(keep.begin(), keep.end(), [&](const ScheduleKey& k) {
      return k.workflow == row.workflow && k.cron == row.cron;
    });
  });
  if (rows.empty()) return {};
  auto written = writer_.write("forget_schedules", [&](Db& db) -> std::expected<void, StoreError> {
    for (const auto& row : rows) {
      auto removed = change(db,
                            "DELETE FROM schedules WHERE forge = ? AND repository = ? AND workflow = ? AND cron = ?",
                            "forget_schedules: delete", row.forge, row.repository, row.workflow, row.cron);
      if (!removed) return std::unexpected(removed.error());
    }
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return {};
}

std::expected<std::int64_t, StoreError> SqliteRunStore::enqueue_run(const NewRun& run,
                                                                    std::int64_t now_ms) {
  std::int64_t id = 0;
  auto written = writer_.write("enqueue_run", [&](Db& db) -> std::expected<void, StoreError> {
    auto inserted = insert_run(db, run, now_ms, "enqueue_run");
    if (!inserted) return std::unexpected(inserted.error());
    id = *inserted;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return id;
}

std::expected<std::optional<RunRecord>, StoreError> SqliteRunStore::claim_next_run(
    const std::string& owner, std::int64_t lease_ms, std::int64_t now_ms) {
  std::optional<RunRecord> claimed;
  auto written = writer_.write("claim_next_run", [&](Db& db) -> std::expected<void, StoreError> {
    // PostgreSQL: the same with FOR UPDATE SKIP LOCKED in the subquery.
    auto stmt =
        db.prepare(sql("UPDATE runs SET state = 'running', owner = ?, attempt = attempt + 1, "
                       "started_ms = ?, finished_ms = 0, lease_until_ms = ?, cancel_requested = 0, "
                       "message = '' WHERE id = (SELECT id FROM runs WHERE state = 'queued' "
                       "ORDER BY id LIMIT 1) RETURNING ",
                       kRunColumns),
                   "claim_next_run");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(owner, now_ms, now_ms + lease_ms);
    auto row = (*stmt)->step();
    if (!row) return std::unexpected(row.error());
    claimed.reset();
    if (!*row) return {};
    claimed = read_run(**stmt);
    return (*stmt)->run();  // past the one row, so the statement completes
  });
  if (!written) return std::unexpected(written.error());
  return claimed;
}

std::expected<bool, StoreError> SqliteRunStore::renew_lease(const Claim& claim,
                                                            std::int64_t lease_ms,
                                                            std::int64_t now_ms) {
  bool renewed = false;
  auto written = writer_.write("renew_lease", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed =
        change(db, sql("UPDATE runs SET lease_until_ms = ? WHERE ", kClaimHolds), "renew_lease",
               now_ms + lease_ms, claim.run_id, claim.owner, claim.attempt);
    if (!changed) return std::unexpected(changed.error());
    renewed = *changed == 1;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return renewed;
}

std::expected<bool, StoreError> SqliteRunStore::finish_run(const Claim& claim, RunState state,
                                                           const std::string& message,
                                                           std::int64_t now_ms) {
  if (!is_final(state)) {
    return std::unexpected(StoreError{"finish_run: run " + std::to_string(claim.run_id) +
                                      ": state " + std::string(to_string(state)) +
                                      " is not a final state"});
  }
  bool finished = false;
  auto written = writer_.write("finish_run", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          sql("UPDATE runs SET state = ?, message = ?, finished_ms = ?, "
                              "lease_until_ms = 0 WHERE ",
                              kClaimHolds),
                          "finish_run", to_string(state), message, now_ms, claim.run_id,
                          claim.owner, claim.attempt);
    if (!changed) return std::unexpected(changed.error());
    if (*changed == 1) {
      finished = true;
      return {};
    }
    // A repeated call (a retry after a lost answer) finds exactly what it wrote.
    auto same = db.prepare(
        "SELECT 1 FROM runs WHERE id = ? AND owner = ? AND attempt = ? AND state = ? "
        "AND message = ? AND finished_ms = ?",
        "finish_run: check repeat");
    if (!same) return std::unexpected(same.error());
    (*same)->bind(claim.run_id, claim.owner, claim.attempt, to_string(state), message, now_ms);
    auto row = (*same)->step();
    if (!row) return std::unexpected(row.error());
    finished = *row;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return finished;
}

std::expected<bool, StoreError> SqliteRunStore::put_job(const Claim& claim, const JobRecord& job) {
  return put_jobs_and_statuses(claim, {job}, {}, 0);
}

std::expected<bool, StoreError> SqliteRunStore::put_jobs_and_statuses(const Claim& claim,
                                                                      const std::vector<JobRecord>& jobs,
                                                                      const std::vector<StatusRecord>& statuses,
                                                                      std::int64_t now_ms) {
  for (const JobRecord& job : jobs)
    if (job.run_id != claim.run_id) {
      return std::unexpected(StoreError{"put_job: job " + job.key + " belongs to run " + std::to_string(job.run_id) +
                                        ", the claim to run " + std::to_string(claim.run_id)});
    }
  bool stored = false;
  auto written = writer_.write("put_job", [&](Db& db) -> std::expected<void, StoreError> {
    if (!jobs.empty()) {
      auto holds = claim_holds(db, claim, "put_job: check claim");
      if (!holds) return std::unexpected(holds.error());
      stored = *holds;
      if (stored)
        for (const JobRecord& job : jobs)
          if (auto put = upsert_job(db, job); !put) return put;
    }
    for (const StatusRecord& status : statuses)
      if (auto put = upsert_status(db, status, now_ms); !put) return put;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return stored;
}

std::expected<std::vector<std::int64_t>, StoreError> SqliteRunStore::supersede(
    const std::string& concurrency_key, std::int64_t newer_run_id, std::int64_t now_ms,
    std::vector<std::int64_t>* cancelled_queued) {
  std::vector<std::int64_t> running, queued;
  if (concurrency_key.empty()) return running;
  const std::string message = "superseded by run " + std::to_string(newer_run_id);
  auto written = writer_.write("supersede", [&](Db& db) -> std::expected<void, StoreError> {
    auto cancel = db.prepare(
        "UPDATE runs SET state = 'cancelled', finished_ms = ?, message = ? "
        "WHERE concurrency_key = ? AND id < ? AND state = 'queued' RETURNING id",
        "supersede: cancel queued runs");
    if (!cancel) return std::unexpected(cancel.error());
    (*cancel)->bind(now_ms, message, concurrency_key, newer_run_id);
    auto cancelled = collect<std::int64_t>(**cancel, [](const Statement& row) { return row.int64(0); });
    if (!cancelled) return std::unexpected(cancelled.error());
    queued = std::move(*cancelled);
    auto stmt = db.prepare(
        "UPDATE runs SET cancel_requested = 1, message = ? "
        "WHERE concurrency_key = ? AND id < ? AND state = 'running' RETURNING id",
        "supersede: stop running runs");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(message, concurrency_key, newer_run_id);
    auto ids = collect<std::int64_t>(**stmt, [](const Statement& row) { return row.int64(0); });
    if (!ids) return std::unexpected(ids.error());
    running = std::move(*ids);
    return {};
  });
  if (!written) return std::unexpected(written.error());
  std::sort(running.begin(), running.end());
  if (cancelled_queued) {
    std::sort(queued.begin(), queued.end());
    cancelled_queued->insert(cancelled_queued->end(), queued.begin(), queued.end());
  }
  return running;
}

std::expected<bool, StoreError> SqliteRunStore::request_cancel(std::int64_t run_id,
                                                               std::int64_t now_ms) {
  bool done = false;
  auto written = writer_.write("request_cancel", [&](Db& db) -> std::expected<void, StoreError> {
    auto cancelled = cancel_in(db, run_id, now_ms);
    if (!cancelled) return std::unexpected(cancelled.error());
    done = *cancelled;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return done;
}

std::expected<bool, StoreError> SqliteRunStore::cancel_run(std::int64_t run_id,
                                                           const std::string& actor,
                                                           std::int64_t now_ms) {
  bool done = false;
  auto written = writer_.write("cancel_run", [&](Db& db) -> std::expected<void, StoreError> {
    auto cancelled = cancel_in(db, run_id, now_ms);
    if (!cancelled) return std::unexpected(cancelled.error());
    done = *cancelled;
    if (!done) return {};
    return insert_action(db, RunAction{0, run_id, "cancel", actor, now_ms, ""},
                         "cancel_run: record action");
  });
  if (!written) return std::unexpected(written.error());
  return done;
}

std::expected<std::optional<std::int64_t>, StoreError> SqliteRunStore::rerun(
    std::int64_t run_id, const std::vector<std::string>& only_jobs, const std::string& actor,
    std::int64_t now_ms) {
  std::optional<std::int64_t> new_id;
  auto written = writer_.write("rerun", [&](Db& db) -> std::expected<void, StoreError> {
    new_id.reset();
    auto original = select_run(db, run_id);
    if (!original) return std::unexpected(original.error());
    if (!*original) return {};
    NewRun copy = static_cast<const NewRun&>(**original);
    copy.trigger = "rerun";
    copy.delivery_id.clear();
    copy.only_jobs = only_jobs;
    auto id = insert_run(db, copy, now_ms, "rerun: insert run");
    if (!id) return std::unexpected(id.error());
    // The claim adds one: the re-run's first attempt follows the original's last.
    auto counted = change(db, "UPDATE runs SET attempt = ? WHERE id = ?", "rerun: set attempt",
                          (*original)->attempt, *id);
    if (!counted) return std::unexpected(counted.error());
    std::string detail = "new run " + std::to_string(*id);
    if (!only_jobs.empty()) detail += " for " + std::to_string(only_jobs.size()) + " failed jobs";
    if (auto recorded = insert_action(db, RunAction{0, run_id, "rerun", actor, now_ms, detail},
                                      "rerun: record action");
        !recorded)
      return recorded;
    new_id = *id;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return new_id;
}

std::expected<std::vector<RunAction>, StoreError> SqliteRunStore::actions_of(std::int64_t run_id) {
  return read([&](Db& db) -> std::expected<std::vector<RunAction>, StoreError> {
    auto stmt = db.prepare(
        sql("SELECT ", kActionColumns, " FROM run_actions WHERE run_id = ? ORDER BY id"),
        "actions_of");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(run_id);
    return collect<RunAction>(**stmt, read_action);
  });
}

std::expected<void, StoreError> SqliteRunStore::put_action_ref(const ActionRefRecord& ref) {
  return writer_.write("put_action_ref", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          "INSERT INTO action_refs (run_id, repository, ref, commit_sha, url, from_cache, at_ms) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, repository, ref) DO UPDATE SET "
                          "commit_sha = excluded.commit_sha, url = excluded.url, "
                          "from_cache = excluded.from_cache, at_ms = excluded.at_ms",
                          "put_action_ref", ref.run_id, ref.repository, ref.ref, ref.commit, ref.url,
                          ref.from_cache, ref.at_ms);
    if (!changed) return std::unexpected(changed.error());
    return {};
  });
}

std::expected<std::vector<ActionRefRecord>, StoreError> SqliteRunStore::action_refs_of(std::int64_t run_id) {
  return read([&](Db& db) -> std::expected<std::vector<ActionRefRecord>, StoreError> {
    auto stmt = db.prepare(
        "SELECT run_id, repository, ref, commit_sha, url, from_cache, at_ms FROM action_refs "
        "WHERE run_id = ? ORDER BY id",
        "action_refs_of");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(run_id);
    return collect<ActionRefRecord>(**stmt, [](const Statement& row) {
      int c = 0;
      ActionRefRecord ref;
      ref.run_id = row.int64(c++);
      ref.repository = row.text(c++);
      ref.ref = row.text(c++);
      ref.commit = row.text(c++);
      ref.url = row.text(c++);
      ref.from_cache = row.int64(c++) != 0;
      ref.at_ms = row.int64(c++);
      return ref;
    });
  });
}

std::expected<std::vector<ActionRefRecord>, StoreError> SqliteRunStore::action_last_uses() {
  return read([&](Db& db) -> std::expected<std::vector<ActionRefRecord>, StoreError> {
    auto stmt = db.prepare(
        "SELECT lower(repository), lower(commit_sha), MAX(at_ms) FROM action_refs "
        "GROUP BY lower(repository), lower(commit_sha) ORDER BY 1, 2",
        "action_last_uses");
    if (!stmt) return std::unexpected(stmt.error());
    return collect<ActionRefRecord>(**stmt, [](const Statement& row) {
      ActionRefRecord use;
      use.repository = row.text(0);
      use.commit = row.text(1);
      use.at_ms = row.int64(2);
      return use;
    });
  });
}

std::expected<bool, StoreError> SqliteRunStore::cancel_requested(std::int64_t run_id) {
  return read([&](Db& db) -> std::expected<bool, StoreError> {
    auto stmt = db.prepare("SELECT cancel_requested FROM runs WHERE id = ?", "cancel_requested");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(run_id);
    auto row = (*stmt)->step();
    if (!row) return std::unexpected(row.error());
    return *row && (*stmt)->int64(0) != 0;
  });
}

std::expected<bool, StoreError> SqliteRunStore::cancel_queued(std::int64_t run_id,
                                                              std::int64_t now_ms) {
  bool cancelled = false;
  auto written = writer_.write("cancel_queued", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          "UPDATE runs SET state = 'cancelled', finished_ms = ?, "
                          "message = 'cancelled while queued' WHERE id = ? AND state = 'queued'",
                          "cancel_queued", now_ms, run_id);
    if (!changed) return std::unexpected(changed.error());
    cancelled = *changed == 1;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return cancelled;
}

std::expected<std::vector<RunRecord>, StoreError> SqliteRunStore::recover(const std::string& owner,
                                                                          bool requeue,
                                                                          std::int64_t now_ms) {
  std::vector<RunRecord> recovered;
  auto written = writer_.write("recover", [&](Db& db) -> std::expected<void, StoreError> {
    recovered.clear();
    auto stmt = db.prepare(sql("SELECT ", kRunColumns,
                               " FROM runs WHERE state = 'running' AND "
                               "(owner = ? OR lease_until_ms < ?) ORDER BY id"),
                           "recover: find interrupted runs");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(owner, now_ms);
    auto runs = collect<RunRecord>(**stmt, read_run);
    stmt->reset();  // done with it before changing the rows it read
    if (!runs) return std::unexpected(runs.error());
    for (const RunRecord& run : *runs) {
      if (auto done = interrupt(db, run, requeue, now_ms); !done) return done;
      auto now = select_run(db, run.id);
      if (!now) return std::unexpected(now.error());
      if (*now) recovered.push_back(std::move(**now));
    }
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return recovered;
}

std::expected<std::optional<RunRecord>, StoreError> SqliteRunStore::get_run(std::int64_t id) {
  return read([&](Db& db) { return select_run(db, id); });
}

std::expected<std::vector<RunRecord>, StoreError> SqliteRunStore::list_runs(
    const RunFilter& filter) {
  return read([&](Db& db) -> std::expected<std::vector<RunRecord>, StoreError> {
    // One statement for every filter: an empty or null parameter matches anything.
    auto stmt = db.prepare(sql("SELECT ", kRunColumns,
                               " FROM runs WHERE (?1 = '' OR repository = ?1) "
                               "AND (?2 = '' OR ref = ?2) AND (?3 = '' OR state = ?3) "
                               "AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5"),
                           "list_runs");
    if (!stmt) return std::unexpected(stmt.error());
    const std::string_view state = filter.state ? to_string(*filter.state) : "";
    if (filter.before_id) {
      (*stmt)->bind(filter.repository, filter.ref, state, *filter.before_id,
                    static_cast<std::int64_t>(filter.limit));
    } else {
      (*stmt)->bind(filter.repository, filter.ref, state, nullptr,
                    static_cast<std::int64_t>(filter.limit));
    }
    return collect<RunRecord>(**stmt, read_run);
  });
}

std::expected<std::vector<JobRecord>, StoreError> SqliteRunStore::jobs_of(std::int64_t run_id) {
  return read([&](Db& db) -> std::expected<std::vector<JobRecord>, StoreError> {
    auto stmt = db.prepare(
        sql("SELECT ", kJobColumns, " FROM jobs WHERE run_id = ? ORDER BY rowid"), "jobs_of");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(run_id);
    return collect<JobRecord>(**stmt, read_job);
  });
}

std::expected<std::int64_t, StoreError> SqliteRunStore::count_runs(RunState state) {
  return read([&](Db& db) -> std::expected<std::int64_t, StoreError> {
    auto stmt = db.prepare("SELECT COUNT(*) FROM runs WHERE state = ?", "count_runs");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(to_string(state));
    auto row = (*stmt)->step();
    if (!row) return std::unexpected(row.error());
    return (*stmt)->int64(0);
  });
}

// The states after which a run never changes (is_final), as SQL.
constexpr const char* kFinishedStates = "state IN ('success', 'failure', 'error', 'cancelled')";

std::expected<std::vector<RunSummary>, StoreError> SqliteRunStore::run_summaries() {
  return read([&](Db& db) -> std::expected<std::vector<RunSummary>, StoreError> {
    auto stmt = db.prepare(
        "SELECT id, repository, forge, clone_url, from_fork, state, created_ms, finished_ms, expired_ms "
        "FROM runs ORDER BY id",
        "run_summaries");
    if (!stmt) return std::unexpected(stmt.error());
    return collect<RunSummary>(**stmt, [](const Statement& row) {
      RunSummary run;
      int c = 0;
      run.id = row.int64(c++);
      run.repository = row.text(c++);
      run.forge = row.text(c++);
      run.clone_url = row.text(c++);
      run.from_fork = row.int64(c++) != 0;
      run.state = parse_run_state(row.text(c++)).value_or(RunState::error);
      run.created_ms = row.int64(c++);
      run.finished_ms = row.int64(c++);
      run.expired_ms = row.int64(c++);
      return run;
    });
  });
}

std::expected<bool, StoreError> SqliteRunStore::expire_run(std::int64_t run_id, std::int64_t now_ms) {
  bool expired = false;
  auto written = writer_.write("expire_run", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          sql("UPDATE runs SET expired_ms = CASE WHEN expired_ms = 0 THEN ? ELSE expired_ms END "
                              "WHERE id = ? AND ",
                              kFinishedStates),
                          "expire_run", now_ms, run_id);
    if (!changed) return std::unexpected(changed.error());
    expired = *changed == 1;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return expired;
}

std::expected<bool, StoreError> SqliteRunStore::delete_run(std::int64_t run_id) {
  bool deleted = false;
  auto written = writer_.write("delete_run", [&](Db& db) -> std::expected<void, StoreError> {
    deleted = false;
    auto finished = db.prepare(sql("SELECT 1 FROM runs WHERE id = ? AND ", kFinishedStates), "delete_run: find run");
    if (!finished) return std::unexpected(finished.error());
    (*finished)->bind(run_id);
    auto row = (*finished)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
    // The delivery stays recorded (its id still dedupes a redelivery), without its run.
    auto unlinked = change(db, "UPDATE deliveries SET run_id = NULL WHERE run_id = ?", "delete_run: unlink deliveries",
                           run_id);
    if (!unlinked) return std::unexpected(unlinked.error());
    auto removed = change(db, "DELETE FROM runs WHERE id = ?", "delete_run", run_id);
    if (!removed) return std::unexpected(removed.error());
    deleted = *removed == 1;
    return {};
  });
  if (!written) return std::unexpected(written.error());
  return deleted;
}

std::expected<void, StoreError> SqliteRunStore::put_status(
    const std::string& repository, const std::string& forge, const std::string& sha,
    const std::string& context, const std::string& state, const std::string& description,
    const std::string& target_url, const std::string& ref, std::int64_t now_ms) {
  StatusRecord status;
  status.repository = repository;
  status.forge = forge;
  status.sha = sha;
  status.context = context;
  status.state = state;
  status.description = description;
  status.target_url = target_url;
  status.ref = ref;
  return writer_.write("put_status", [&](Db& db) { return upsert_status(db, status, now_ms); });
}

std::expected<std::vector<StatusRecord>, StoreError> SqliteRunStore::due_statuses(
    std::int64_t now_ms, std::size_t limit) {
  return read([&](Db& db) -> std::expected<std::vector<StatusRecord>, StoreError> {
    auto stmt = db.prepare(sql("SELECT ", kStatusColumns,
                               " FROM statuses WHERE outcome = 'due' AND next_attempt_ms <= ? "
                               "ORDER BY next_attempt_ms, id LIMIT ?"),
                           "due_statuses");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(now_ms, static_cast<std::int64_t>(limit));
    return collect<StatusRecord>(**stmt, read_status);
  });
}

std::expected<void, StoreError> SqliteRunStore::mark_status_delivered(std::int64_t id,
                                                                      const std::string& state) {
  return writer_.write("mark_status_delivered", [&](Db& db) -> std::expected<void, StoreError> {
    // The forge shows `state` now whatever the row holds; the row is done only if its
    // newest state is that one.
    auto changed = change(db,
                          "UPDATE statuses SET delivered_state = ?1, "
                          "outcome = CASE WHEN state = ?1 THEN 'delivered' "
                          "WHEN outcome = 'refused' THEN 'refused' ELSE 'due' END, "
                          "last_error = CASE WHEN state = ?1 THEN '' ELSE last_error END "
                          "WHERE id = ?2",
                          "mark_status_delivered", state, id);
    if (!changed) return std::unexpected(changed.error());
    return {};
  });
}

std::expected<void, StoreError> SqliteRunStore::mark_status_retry(std::int64_t id,
                                                                  std::int64_t next_attempt_ms,
                                                                  const std::string& error) {
  return writer_.write("mark_status_retry", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          "UPDATE statuses SET attempts = attempts + 1, next_attempt_ms = ?, "
                          "last_error = ? WHERE id = ? AND outcome = 'due'",
                          "mark_status_retry", next_attempt_ms, error, id);
    if (!changed) return std::unexpected(changed.error());
    return {};
  });
}

std::expected<void, StoreError> SqliteRunStore::mark_status_refused(std::int64_t id,
                                                                    const std::string& reason) {
  return writer_.write("mark_status_refused", [&](Db& db) -> std::expected<void, StoreError> {
    auto changed = change(db,
                          "UPDATE statuses SET outcome = 'refused', last_error = ? "
                          "WHERE id = ? AND outcome = 'due'",
                          "mark_status_refused", reason, id);
    if (!changed) return std::unexpected(changed.error());
    return {};
  });
}

std::expected<std::int64_t, StoreError> SqliteRunStore::pending_status_count() {
  return read([&](Db& db) {
    return db.query_int("SELECT COUNT(*) FROM statuses WHERE outcome = 'due'",
                        "pending_status_count");
  });
}

std::expected<std::vector<StatusRecord>, StoreError> SqliteRunStore::statuses_of(const std::string& forge,
                                                                                const std::string& repository,
                                                                                const std::string& sha) {
  return read([&](Db& db) -> std::expected<std::vector<StatusRecord>, StoreError> {
    auto stmt = db.prepare(sql("SELECT ", kStatusColumns,
                               " FROM statuses WHERE forge = ? AND repository = ? AND sha = ? ORDER BY id"),
                           "statuses_of");
    if (!stmt) return std::unexpected(stmt.error());
    (*stmt)->bind(forge, repository, sha);
    return collect<StatusRecord>(**stmt, read_status);
  });
}

std::expected<std::optional<std::int64_t>, StoreError> SqliteRunStore::oldest_due_status_ms() {
  return read([&](Db& db) -> std::expected<std::optional<std::int64_t>, StoreError> {
    auto due = db.query_int("SELECT COUNT(*) FROM statuses WHERE outcome = 'due'", "oldest_due_status_ms");
    if (!due) return std::unexpected(due.error());
    if (*due == 0) return std::nullopt;
    auto oldest = db.query_int("SELECT MIN(due_since_ms) FROM statuses WHERE outcome = 'due'",
                               "oldest_due_status_ms");
    if (!oldest) return std::unexpected(oldest.error());
    return *oldest;
  });
}

int sqlite_schema_version() { return current_schema_version(); }

std::expected<std::unique_ptr<RunStore>, StoreError> open_sqlite_store(
    const std::filesystem::path& file, const SqliteStoreOptions& options) {
  auto writer = SqliteDb::open(file, /*create=*/true, options.busy_timeout_ms);
  if (!writer) return std::unexpected(writer.error());
  const std::string where = " (" + file.string() + ")";
  // WAL lets the read connection run beside the writer; FULL makes every commit reach
  // the disk before accept_delivery() answers (a webhook is answered 2xx only then).
  auto mode = (*writer)->prepare("PRAGMA journal_mode = WAL", "set journal mode");
  if (!mode) return std::unexpected(StoreError{mode.error().message + where});
  auto row = (*mode)->step();
  if (!row) return std::unexpected(StoreError{row.error().message + where});
  if (!*row || (*mode)->text(0) != "wal") {
    return std::unexpected(StoreError{"set journal mode" + where + ": WAL is not available"});
  }
  mode->reset();
  if (auto sync = (*writer)->exec("PRAGMA synchronous = FULL", "set synchronous" + where); !sync) {
    return std::unexpected(sync.error());
  }
  if (auto migrated = migrate_schema(**writer, file); !migrated) {
    return std::unexpected(migrated.error());
  }
  auto reader = SqliteDb::open(file, /*create=*/false, options.busy_timeout_ms);
  if (!reader) return std::unexpected(reader.error());
  return std::make_unique<SqliteRunStore>(std::move(*writer), std::move(*reader),
                                          options.max_batch);
}

}  // namespace sandci::agent::store
