#pragma once
// The RunStore on one SQLite file (WAL). Every write goes through the group-commit
// writer (one connection, one thread), so writes never contend with each other inside
// the process; reads use a second connection, which WAL lets run beside the writer.
// The SQL keeps to what PostgreSQL also accepts (UPDATE ... RETURNING, ON CONFLICT),
// so the second backend can follow the same statements.
#include <memory>
#include <mutex>

#include "agent/store/group_commit_writer.h"
#include "agent/store/run_store.h"
#include "agent/store/sqlite_db.h"

namespace sandci::agent::store {

class SqliteRunStore final : public RunStore {
 public:
  SqliteRunStore(std::unique_ptr<SqliteDb> writer, std::unique_ptr<SqliteDb> reader,
                 std::size_t max_batch);

  std::expected<Accepted, StoreError> accept_delivery(const DeliveryRecord& delivery,
                                                      const std::optional<NewRun>& run) override;
  std::expected<Accepted, StoreError> accept_delivery_runs(const DeliveryRecord& delivery,
                                                           const std::vector<NewRun>& runs) override;
  void accept_delivery_runs_then(const DeliveryRecord& delivery, const std::vector<NewRun>& runs,
                                 AcceptedDone done) override;
  std::expected<std::optional<std::int64_t>, StoreError> schedule_last_fire(const ScheduleKey& key) override;
  std::expected<bool, StoreError> schedule_first_seen(const ScheduleKey& key, std::int64_t seen_ms) override;
  std::expected<std::optional<std::int64_t>, StoreError> record_schedule_fire(const ScheduleKey& key,
                                                                              std::int64_t fire_ms,
                                                                              const NewRun& run,
                                                                              std::int64_t now_ms) override;
  std::expected<void, StoreError> forget_schedules(const std::string& forge, const std::string& repository,
                                                   const std::vector<ScheduleKey>& keep) override;
  std::expected<std::int64_t, StoreError> enqueue_run(const NewRun& run,
                                                      std::int64_t now_ms) override;
  std::expected<std::optional<RunRecord>, StoreError> claim_next_run(const std::string& owner,
                                                                     std::int64_t lease_ms,
                                                                     std::int64_t now_ms) override;
  std::expected<bool, StoreError> renew_lease(const Claim& claim, std::int64_t lease_ms,
                                              std::int64_t now_ms) override;
  std::expected<bool, StoreError> finish_run(const Claim& claim, RunState state,
                                             const std::string& message,
                                             std::int64_t now_ms) override;
  std::expected<bool, StoreError> put_job(const Claim& claim, const JobRecord& job) override;
  std::expected<bool, StoreError> put_jobs_and_statuses(const Claim& claim, const std::vector<JobRecord>& jobs,
                                                        const std::vector<StatusRecord>& statuses,
                                                        std::int64_t now_ms) override;
  std::expected<std::vector<std::int64_t>, StoreError> supersede(const std::string& concurrency_key,
                                                                 std::int64_t newer_run_id,
                                                                 std::int64_t now_ms,
                                                                 std::vector<std::int64_t>* cancelled_queued = nullptr) override;
  std::expected<bool, StoreError> request_cancel(std::int64_t run_id, std::int64_t now_ms) override;
  std::expected<bool, StoreError> cancel_requested(std::int64_t run_id) override;
  std::expected<bool, StoreError> cancel_queued(std::int64_t run_id, std::int64_t now_ms) override;
  std::expected<bool, StoreError> cancel_run(std::int64_t run_id, const std::string& actor,
                                             std::int64_t now_ms) override;
  std::expected<std::optional<std::int64_t>, StoreError> rerun(
      std::int64_t run_id, const std::vector<std::string>& only_jobs, const std::string& actor,
      std::int64_t now_ms) override;
  std::expected<std::vector<RunAction>, StoreError> actions_of(std::int64_t run_id) override;
  std::expected<void, StoreError> put_action_ref(const ActionRefRecord& ref) override;
  std::expected<std::vector<ActionRefRecord>, StoreError> action_refs_of(std::int64_t run_id) override;
  std::expected<std::vector<ActionRefRecord>, StoreError> action_last_uses() override;
  std::expected<std::vector<RunRecord>, StoreError> recover(const std::string& owner, bool requeue,
                                                            std::int64_t now_ms) override;

  std::expected<std::optional<RunRecord>, StoreError> get_run(std::int64_t id) override;
  std::expected<std::vector<RunRecord>, StoreError> list_runs(const RunFilter& filter) override;
  std::expected<std::vector<JobRecord>, StoreError> jobs_of(std::int64_t run_id) override;
  std::expected<std::int64_t, StoreError> count_runs(RunState state) override;
  std::expected<std::vector<RunSummary>, StoreError> run_summaries() override;
  std::expected<bool, StoreError> expire_run(std::int64_t run_id, std::int64_t now_ms) override;
  std::expected<bool, StoreError> delete_run(std::int64_t run_id) override;

  std::expected<void, StoreError> put_status(const std::string& repository, const std::string& forge,
                                             const std::string& sha, const std::string& context,
                                             const std::string& state,
                                             const std::string& description,
                                             const std::string& target_url, const std::string& ref,
                                             std::int64_t now_ms) override;
  std::expected<std::vector<StatusRecord>, StoreError> due_statuses(std::int64_t now_ms,
                                                                    std::size_t limit) override;
  std::expected<void, StoreError> mark_status_delivered(std::int64_t id,
                                                        const std::string& state) override;
  std::expected<void, StoreError> mark_status_retry(std::int64_t id, std::int64_t next_attempt_ms,
                                                    const std::string& error) override;
  std::expected<void, StoreError> mark_status_refused(std::int64_t id,
                                                      const std::string& reason) override;
  std::expected<std::int64_t, StoreError> pending_status_count() override;
  std::expected<std::vector<StatusRecord>, StoreError> statuses_of(const std::string& forge,
                                                                   const std::string& repository,
                                                                   const std::string& sha) override;
  std::expected<std::optional<std::int64_t>, StoreError> oldest_due_status_ms() override;

  // Transactions committed by the writer so far (how well writes were grouped).
  std::uint64_t write_transactions() const { return writer_.transactions(); }

 private:
  // Runs a read on the read connection, one reader at a time.
  template <typename Fn>
  auto read(Fn&& fn) {
    std::lock_guard lock(read_mutex_);
    return fn(*reader_);
  }

  GroupCommitWriter writer_;
  std::mutex read_mutex_;
  std::unique_ptr<SqliteDb> reader_;
};

}  // namespace sandci::agent::store
