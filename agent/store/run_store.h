#pragma once
// The daemon's durable state: webhook deliveries (dedupe), the run queue, jobs and the
// commit-status outbox, behind one interface so a second backend (PostgreSQL, several
// agents claiming runs from one database) can replace SQLite without changing callers.
//
// Ownership of a run is a Claim: the owner's name plus the attempt number (an epoch)
// that claim_next_run() incremented. Every write made on behalf of a claim checks both
// and that the run is still running, so a presumed-dead agent's late writes change
// nothing (they return false). Leases are renewed by heartbeat; recover() takes back
// runs whose lease expired.
//
// All methods are thread-safe. Times are passed in as milliseconds since the epoch and
// never read from a clock inside, so tests are deterministic. Every method returns a
// StoreError (with the operation named) when the database fails: disk full, locked,
// corrupt, read-only.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent::store {

enum class RunState { queued, running, success, failure, error, cancelled };
enum class JobState { queued, running, success, failure, skipped, cancelled, error };

std::string_view to_string(RunState state);
std::string_view to_string(JobState state);
// The inverse of to_string; nullopt for any other text.
std::optional<RunState> parse_run_state(std::string_view text);
std::optional<JobState> parse_job_state(std::string_view text);
// success, failure, error, cancelled: the run will not change state again.
bool is_final(RunState state);

// What a webhook, `sandci enqueue` or a re-run asks to build.
struct NewRun {
  std::string repository{}, forge{}, event{}, action{}, ref{}, sha{}, base_ref{}, head_ref{},
      clone_url{};
  bool from_fork = false;
  std::string payload_json{};
  std::string trigger{};          // webhook, enqueue, rerun
  std::string concurrency_key{};  // runs with the same key: a newer one supersedes older ones
  std::string delivery_id{};
  std::string title{};  // commit message first line
  // Job keys ("<workflow file>/<job name>", as JobRecord.key) this run is limited to;
  // empty: every job the event triggers. A re-run of the failed jobs names them.
  std::vector<std::string> only_jobs{};
};

// Who holds a running run. attempt is the epoch: it grows on every claim, so a claim
// taken before a re-queue never matches again.
struct Claim {
  std::int64_t run_id = 0;
  std::string owner{};
  std::int64_t attempt = 0;
};

struct RunRecord : NewRun {
  std::int64_t id = 0;
  RunState state = RunState::queued;
  std::int64_t created_ms = 0, started_ms = 0, finished_ms = 0;
  std::string owner{};  // empty while queued
  std::int64_t lease_until_ms = 0;
  std::int64_t attempt = 0;  // how many times the run was claimed
  bool cancel_requested = false;
  std::string message{};  // why it ended (or was re-queued), for people
  // When retention removed the run's logs and artifacts, keeping its rows as a summary;
  // 0 while they are kept.
  std::int64_t expired_ms = 0;

  Claim claim() const { return Claim{id, owner, attempt}; }
};

struct DeliveryRecord {
  std::string forge{}, delivery_id{}, repository{}, event{};
  std::int64_t received_ms = 0;
  std::string outcome{};  // what the handler did with it ("queued", "ignored: ping" ...)
};

struct JobRecord {
  std::int64_t run_id = 0;
  std::string key{};  // unique in the run, e.g. "ci.yml/build (linux)"
  std::string workflow{}, name{};
  JobState state = JobState::queued;
  std::int64_t started_ms = 0, finished_ms = 0;
  std::string log_path{}, image{}, message{};
  std::vector<std::string> needs{};  // keys of the jobs of the run it waits for
};

// One (repository, sha, context) in the commit-status outbox; state is the wire state
// string ("pending", "success", ...) as the forge spells it.
struct StatusRecord {
  std::int64_t id = 0;
  std::string repository{}, forge{}, sha{}, context{}, state{}, description{}, target_url{}, ref{};
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_error{};
};

// Something an admin did to a run (cancel, rerun), kept for the record.
struct RunAction {
  std::int64_t id = 0;
  std::int64_t run_id = 0;
  std::string action{};  // cancel, rerun
  std::string actor{};   // who asked (a name the client gave, else "admin")
  std::int64_t at_ms = 0;
  std::string detail{};  // e.g. "new run 12", "new run 12 for 2 failed jobs"
};

// A remote action or reusable workflow a run used, at the commit its ref resolved to.
struct ActionRefRecord {
  std::int64_t run_id = 0;
  std::string repository{};  // owner/repo
  std::string ref{};         // as written: tag, branch or commit
  std::string commit{};      // 40 hex
  std::string url{};         // where it came from, without credentials
  bool from_cache = false;   // the source could not be reached: the cached ref was used
  std::int64_t at_ms = 0;
};

// What retention needs to know of a run, without its payload.
struct RunSummary {
  std::int64_t id = 0;
  std::string repository{}, forge{}, clone_url{};
  bool from_fork = false;
  RunState state = RunState::queued;
  std::int64_t created_ms = 0, finished_ms = 0;
  std::int64_t expired_ms = 0;  // as RunRecord.expired_ms
};

struct StoreError {
  std::string message{};  // "<operation>: <what the database said>"
};

struct RunFilter {
  std::string repository{};  // empty: any
  std::string ref{};         // empty: any
  std::optional<RunState> state{};
  std::size_t limit = 50;
  std::optional<std::int64_t> before_id{};  // paging: only runs with a smaller id
};

// One cron line of one workflow file of one repository (agent/server/schedule_runner).
struct ScheduleKey {
  std::string forge{}, repository{}, workflow{}, cron{};
};

class RunStore {
 public:
  struct Accepted {
    bool duplicate = false;
    std::optional<std::int64_t> run_id{};  // set when a run was queued (the first one)
    std::vector<std::int64_t> run_ids{};   // every run queued, in the order given
  };

  virtual ~RunStore() = default;

  // Records the delivery (unique on forge + delivery_id) and queues `run` (if given) in
  // one transaction, durable on disk before this returns. A delivery id seen before
  // queues nothing and returns duplicate = true. The run's created_ms is received_ms.
  virtual std::expected<Accepted, StoreError> accept_delivery(const DeliveryRecord& delivery,
                                                              const std::optional<NewRun>& run) = 0;

  // accept_delivery() for a delivery that starts several runs (a pull request runs its
  // pull_request workflows from the head and its pull_request_target ones from the base):
  // all of them or none, in one transaction; run_id is the first one's id.
  virtual std::expected<Accepted, StoreError> accept_delivery_runs(const DeliveryRecord& delivery,
                                                                   const std::vector<NewRun>& runs) = 0;

  // accept_delivery_runs() without waiting: `done` is told the same result once the
  // transaction committed (or failed), on the store's writer thread, or at once on the
  // caller's thread when the store is closing. Nothing is answered before `done` runs,
  // so a caller that answers from `done` still answers only durable deliveries. `done`
  // must be quick, must not throw and must not call this store (the writer would wait
  // for itself).
  using AcceptedDone = std::function<void(std::expected<Accepted, StoreError>)>;
  virtual void accept_delivery_runs_then(const DeliveryRecord& delivery, const std::vector<NewRun>& runs,
                                         AcceptedDone done) = 0;

  // Schedules. The last fire time handled for `key` (ms), nullopt when never seen.
  virtual std::expected<std::optional<std::int64_t>, StoreError> schedule_last_fire(
      const ScheduleKey& key) = 0;
  // Records `seen_ms` as the key's last fire time if it has none yet, so that a schedule
  // starts with the first fire time after it was first seen; true if it was recorded.
  virtual std::expected<bool, StoreError> schedule_first_seen(const ScheduleKey& key,
                                                              std::int64_t seen_ms) = 0;
  // Queues `run` for fire time `fire_ms` and records it as the key's last fire, in one
  // transaction, unless a fire at or after fire_ms is recorded already: then nothing is
  // written and nullopt returned. So a fire time never queues two runs, even across restarts.
  virtual std::expected<std::optional<std::int64_t>, StoreError> record_schedule_fire(
      const ScheduleKey& key, std::int64_t fire_ms, const NewRun& run, std::int64_t now_ms) = 0;
  // Forgets the schedules of (forge, repository) whose key is not in `keep` (their cron
  // line or workflow was removed): a schedule added again later starts afresh.
  virtual std::expected<void, StoreError> forget_schedules(const std::string& forge,
                                                           const std::string& repository,
                                                           const std::vector<ScheduleKey>& keep) = 0;

  // Queues a run that came from no webhook (`sandci enqueue`, a re-run); durable on
  // return.
  virtual std::expected<std::int64_t, StoreError> enqueue_run(const NewRun& run,
                                                              std::int64_t now_ms) = 0;

  // The oldest queued run (smallest id) becomes running: owner set, attempt + 1,
  // started_ms = now, lease_until_ms = now + lease_ms, cancel_requested cleared.
  // Returns it as stored, or nullopt when nothing is queued.
  virtual std::expected<std::optional<RunRecord>, StoreError> claim_next_run(
      const std::string& owner, std::int64_t lease_ms, std::int64_t now_ms) = 0;

  // The claim-checked writes: each returns false and changes nothing when the claim is
  // stale (another owner or attempt, or the run no longer running).
  // renew_lease: lease_until_ms = now + lease_ms. An expired lease that nobody took back
  // yet can still be renewed: the attempt is the fence, not the clock.
  virtual std::expected<bool, StoreError> renew_lease(const Claim& claim, std::int64_t lease_ms,
                                                      std::int64_t now_ms) = 0;
  // Ends the run with a final state (a non-final one is a StoreError). Idempotent:
  // repeating the same finish with the same claim returns true again and changes nothing.
  virtual std::expected<bool, StoreError> finish_run(const Claim& claim, RunState state,
                                                     const std::string& message,
                                                     std::int64_t now_ms) = 0;
  // Inserts or replaces the job (run_id, key); job.run_id must be claim.run_id.
  virtual std::expected<bool, StoreError> put_job(const Claim& claim, const JobRecord& job) = 0;
  // A run's announcement in one transaction (one fsync, however many jobs): every job
  // as put_job() (only while the claim holds; the return says whether it did) and every
  // status as put_status() (always, as put_status() does), in the order given. Only
  // repository, forge, sha, context, state, description, target_url and ref of each
  // StatusRecord are used. A job of another run is a StoreError and writes nothing.
  virtual std::expected<bool, StoreError> put_jobs_and_statuses(const Claim& claim,
                                                                const std::vector<JobRecord>& jobs,
                                                                const std::vector<StatusRecord>& statuses,
                                                                std::int64_t now_ms) = 0;

  // Runs with this concurrency key and a smaller id than newer_run_id: queued ones are
  // cancelled ("superseded by run N"), their ids added to `cancelled_queued` when given
  // (so their statuses can be ended); running ones get cancel_requested and their ids
  // are returned, so the worker can stop them. An empty key supersedes nothing.
  virtual std::expected<std::vector<std::int64_t>, StoreError> supersede(
      const std::string& concurrency_key, std::int64_t newer_run_id, std::int64_t now_ms,
      std::vector<std::int64_t>* cancelled_queued = nullptr) = 0;

  // A queued run is cancelled at once; a running one gets cancel_requested (its worker
  // stops it and finishes it). False when the run is unknown or already finished.
  virtual std::expected<bool, StoreError> request_cancel(std::int64_t run_id,
                                                         std::int64_t now_ms) = 0;
  virtual std::expected<bool, StoreError> cancel_requested(std::int64_t run_id) = 0;
  // Cancels the run only if it is still queued; true if it did.
  virtual std::expected<bool, StoreError> cancel_queued(std::int64_t run_id,
                                                        std::int64_t now_ms) = 0;

  // At start-up: runs left running by `owner`, or by anyone whose lease ended before
  // now_ms, are re-queued (state queued, owner cleared, attempt kept, message
  // "re-queued after the agent stopped") when `requeue`, else marked error
  // ("interrupted: the agent stopped"). A run whose cancel was requested is cancelled
  // instead of re-queued. Their queued or running jobs become cancelled (re-queue) or
  // error. Returns the runs as they are now, so the caller can reap their sandboxes and
  // post statuses.
  virtual std::expected<std::vector<RunRecord>, StoreError> recover(const std::string& owner,
                                                                    bool requeue,
                                                                    std::int64_t now_ms) = 0;

  // An admin's cancel: request_cancel() and, when it took effect, a "cancel" action by
  // `actor` recorded in the same transaction. False (nothing recorded) when the run is
  // unknown or already finished.
  virtual std::expected<bool, StoreError> cancel_run(std::int64_t run_id, const std::string& actor,
                                                     std::int64_t now_ms) = 0;
  // Queues a copy of run `run_id` (repository, forge, event, ref, sha, payload, clone
  // URL...) with trigger "rerun", no delivery id, `only_jobs` as given, and its attempt
  // starting from the original's (its first claim makes it original.attempt + 1), and
  // records a "rerun" action on the original, all in one transaction. Returns the new
  // run's id, or nullopt (nothing written) when `run_id` is unknown. The caller decides
  // whether the original may be re-run (e.g. only once it finished).
  virtual std::expected<std::optional<std::int64_t>, StoreError> rerun(
      std::int64_t run_id, const std::vector<std::string>& only_jobs, const std::string& actor,
      std::int64_t now_ms) = 0;
  // The actions on a run, oldest first.
  virtual std::expected<std::vector<RunAction>, StoreError> actions_of(std::int64_t run_id) = 0;
  // Records which commit a remote action's ref resolved to for the run (once per
  // repository@ref: a second record of the same one replaces the first).
  virtual std::expected<void, StoreError> put_action_ref(const ActionRefRecord& ref) = 0;
  // The run's remote actions, in the order first recorded.
  virtual std::expected<std::vector<ActionRefRecord>, StoreError> action_refs_of(std::int64_t run_id) = 0;
  // The newest record of each remote action commit over every stored run, for
  // retention (a use recorded before the cache stamped its folders counts too):
  // repository lower-cased, commit, at_ms the newest; run_id, ref and url empty.
  virtual std::expected<std::vector<ActionRefRecord>, StoreError> action_last_uses() = 0;

  virtual std::expected<std::optional<RunRecord>, StoreError> get_run(std::int64_t id) = 0;
  // Newest first (largest id first).
  virtual std::expected<std::vector<RunRecord>, StoreError> list_runs(const RunFilter& filter) = 0;
  // In the order they were first stored.
  virtual std::expected<std::vector<JobRecord>, StoreError> jobs_of(std::int64_t run_id) = 0;
  virtual std::expected<std::int64_t, StoreError> count_runs(RunState state) = 0;

  // Retention. Every run, oldest (smallest id) first.
  virtual std::expected<std::vector<RunSummary>, StoreError> run_summaries() = 0;
  // Marks a finished run expired at now_ms (its rows stay as a summary). False (nothing
  // written) when the run is unknown or not finished; true again for an expired one,
  // whose expiry time is kept.
  virtual std::expected<bool, StoreError> expire_run(std::int64_t run_id, std::int64_t now_ms) = 0;
  // Deletes a finished run with its jobs, actions and action refs; deliveries that
  // queued it keep their record (run_id cleared). False (nothing deleted) when the run
  // is unknown or not finished.
  virtual std::expected<bool, StoreError> delete_run(std::int64_t run_id) = 0;

  // The commit-status outbox keeps one row per (forge, repository, sha, context) holding the
  // newest state. If that wire state is the one last delivered for the key, nothing is
  // due (the forge never gets the same state twice for one context); otherwise the row
  // is due now with attempts reset.
  virtual std::expected<void, StoreError> put_status(
      const std::string& repository, const std::string& forge, const std::string& sha,
      const std::string& context, const std::string& state, const std::string& description,
      const std::string& target_url, const std::string& ref, std::int64_t now_ms) = 0;
  // Due rows (next_attempt_ms <= now), the longest waiting first.
  virtual std::expected<std::vector<StatusRecord>, StoreError> due_statuses(std::int64_t now_ms,
                                                                            std::size_t limit) = 0;
  // Records that the forge now shows `state` for the row's key. If a newer state replaced
  // the row meanwhile, that one stays due (unless it equals `state`).
  virtual std::expected<void, StoreError> mark_status_delivered(std::int64_t id,
                                                                const std::string& state) = 0;
  // A failed attempt: attempts + 1, try again at next_attempt_ms. Only for a due row.
  virtual std::expected<void, StoreError> mark_status_retry(std::int64_t id,
                                                            std::int64_t next_attempt_ms,
                                                            const std::string& error) = 0;
  // The forge refused it for good (422, unknown sha...): kept with the reason, never
  // retried, until a newer state for the key arrives.
  virtual std::expected<void, StoreError> mark_status_refused(std::int64_t id,
                                                              const std::string& reason) = 0;
  virtual std::expected<std::int64_t, StoreError> pending_status_count() = 0;
  // Every context the outbox holds for one commit (its newest state each), oldest first.
  virtual std::expected<std::vector<StatusRecord>, StoreError> statuses_of(const std::string& forge,
                                                                           const std::string& repository,
                                                                           const std::string& sha) = 0;
  // Since when (ms) the longest-waiting undelivered status has waited (a newer state
  // of a waiting key keeps its age); nullopt when nothing is due.
  virtual std::expected<std::optional<std::int64_t>, StoreError> oldest_due_status_ms() = 0;
};

struct SqliteStoreOptions {
  // Most writes committed in one transaction (one fsync). 1 turns group commit off:
  // one transaction per write (the benchmark's baseline).
  std::size_t max_batch = 4096;
  int busy_timeout_ms = 5000;
};

// Creates or opens the SQLite store at `file` (WAL, synchronous=FULL, foreign keys),
// migrating its schema (PRAGMA user_version) one transaction per step. A file from a
// newer schema, a corrupt file or an unusable path is a StoreError naming the file.
std::expected<std::unique_ptr<RunStore>, StoreError> open_sqlite_store(
    const std::filesystem::path& file, const SqliteStoreOptions& options = {});

// The schema version this build writes.
int sqlite_schema_version();

}  // namespace sandci::agent::store
