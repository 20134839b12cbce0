#pragma once
// Group commit: one writer thread owns the write connection; it takes every write that
// is waiting, runs them all in one transaction (each in its own savepoint, so one
// failing write does not undo the others), commits once (one fsync), then tells each
// caller its own result. A caller learns of its write only after it is durable, and
// many callers share the cost of one fsync.
//
// Each write is told alone (its own completion, never a broadcast), so a commit
// wakes exactly the callers whose writes it carried, and a caller that does not
// wait (submit) costs no thread at all until its write is done.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/store/run_store.h"
#include "agent/store/sqlite_db.h"

namespace sandci::agent::store {

class GroupCommitWriter {
 public:
  // A write: runs inside the writer's transaction; its results become visible to the
  // caller only if the transaction commits.
  using Work = std::function<std::expected<void, StoreError>(SqliteDb&)>;
  // Told the write's result once its transaction committed (or failed).
  using Done = std::function<void(std::expected<void, StoreError>)>;

  // Starts the writer thread; at most max_batch writes share a transaction (1: none).
  GroupCommitWriter(std::unique_ptr<SqliteDb> db, std::size_t max_batch);
  // Finishes every write already submitted (each told its result), then stops the thread.
  ~GroupCommitWriter();
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  // Runs `work` in the next transaction and returns once it is committed (or failed).
  // Any error from the work itself, BEGIN or COMMIT comes back as the StoreError; those
  // of the shared transaction are prefixed with `operation` (a string literal).
  std::expected<void, StoreError> write(std::string_view operation, Work work);

  // write() without waiting: queues `work` and returns at once. `done` is called
  // exactly once with what write() would have returned: on the writer thread after
  // the commit, or at once on the caller's thread when the writer is closing. It
  // runs before the next transaction starts, so it must be quick, must not throw
  // and must not write through this writer (it would wait for itself).
  void submit(std::string_view operation, Work work, Done done);

  // How many transactions committed so far (tests and benchmarks see the grouping).
  std::uint64_t transactions() const;

 private:
  struct Request {
    std::string_view operation;
    Work work;
    Done done;
    std::optional<StoreError> error;
  };
  using Batch = std::vector<std::unique_ptr<Request>>;

  void loop();
  // Sets the error of a request whose shared transaction failed.
  static void fail(Request& request, const StoreError& error);
  void commit_batch(const Batch& batch);
  // Runs batch[first..] in one transaction; returns the index it stopped at (the end,
  // or the request after which SQLite rolled the transaction back by itself).
  std::size_t run_transaction(const Batch& batch, std::size_t first);

  std::unique_ptr<SqliteDb> db_;
  const std::size_t max_batch_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<std::unique_ptr<Request>> queue_;
  bool stopping_ = false;
  std::uint64_t transactions_ = 0;
  std::thread thread_;
};

}  // namespace sandci::agent::store
