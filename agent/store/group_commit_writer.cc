#include "agent/store/group_commit_writer.h"

#include <algorithm>

namespace sandci::agent::store {

namespace {

std::expected<void, StoreError> run_simple(SqliteDb& db, const std::string& sql,
                                           std::string_view operation) {
  auto stmt = db.prepare(sql, operation);
  if (!stmt) return std::unexpected(stmt.error());
  return (*stmt)->run();
}

// One waiting caller of write(): shared with the writer's completion, so neither
// side can outlive the other's last touch.
struct Waiter {
  std::mutex mutex;
  std::condition_variable ready;
  std::optional<std::expected<void, StoreError>> result;
};

}  // namespace

GroupCommitWriter::GroupCommitWriter(std::unique_ptr<SqliteDb> db, std::size_t max_batch)
    : db_(std::move(db)), max_batch_(std::max<std::size_t>(1, max_batch)) {
  thread_ = std::thread([this] { loop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  thread_.join();
}

std::expected<void, StoreError> GroupCommitWriter::write(std::string_view operation, Work work) {
  auto waiter = std::make_shared<Waiter>();
  submit(operation, std::move(work), [waiter](std::expected<void, StoreError> result) {
    {
      std::lock_guard lock(waiter->mutex);
      waiter->result = std::move(result);
    }
    waiter->ready.notify_one();
  });
  std::unique_lock lock(waiter->mutex);
  waiter->ready.wait(lock, [&] { return waiter->result.has_value(); });
  return std::move(*waiter->result);
}

void GroupCommitWriter::submit(std::string_view operation, Work work, Done done) {
  auto request = std::make_unique<Request>(Request{operation, std::move(work), std::move(done), std::nullopt});
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(request));
    }
  }
  if (request) {  // not queued: the writer is closing
    request->done(std::unexpected(StoreError{std::string(operation) + ": the store is closing"}));
    return;
  }
  work_ready_.notify_one();
}

std::uint64_t GroupCommitWriter::transactions() const {
  std::lock_guard lock(mutex_);
  return transactions_;
}

void GroupCommitWriter::loop() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything submitted is done
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit_batch(batch);
    // Outside the lock: callers submit the next batch while these are told.
    for (auto& request : batch) {
      std::expected<void, StoreError> result;
      if (request->error) result = std::unexpected(std::move(*request->error));
      request->done(std::move(result));
    }
  }
}

void GroupCommitWriter::fail(Request& request, const StoreError& error) {
  if (request.error) return;  // its own error says more
  request.error = StoreError{std::string(request.operation) + ": " + error.message};
}

void GroupCommitWriter::commit_batch(const Batch& batch) {
  for (std::size_t next = 0; next < batch.size();) next = run_transaction(batch, next);
}

std::size_t GroupCommitWriter::run_transaction(const Batch& batch, std::size_t first) {
  // IMMEDIATE takes the write lock up front, so another process holding it makes us
  // wait (busy timeout) here rather than fail half-way through the batch.
  if (auto begin = run_simple(*db_, "BEGIN IMMEDIATE", "begin write transaction"); !begin) {
    for (std::size_t i = first; i < batch.size(); ++i) fail(*batch[i], begin.error());
    return batch.size();
  }
  for (std::size_t i = first; i < batch.size(); ++i) {
    Request& request = *batch[i];
    auto result = run_simple(*db_, "SAVEPOINT write_request", "savepoint");
    if (result) result = request.work(*db_);
    if (result) {
      result = run_simple(*db_, "RELEASE write_request", "release savepoint");
      if (result) continue;
    }
    request.error = result.error();
    if (db_->in_transaction()) {
      // Undo only this write; the others in the batch still commit.
      (void)run_simple(*db_, "ROLLBACK TO write_request", "rollback to savepoint");
      (void)run_simple(*db_, "RELEASE write_request", "release savepoint");
      continue;
    }
    // SQLite rolled the whole transaction back by itself (disk full, I/O error): the
    // earlier writes of this transaction are lost too.
    const StoreError lost{"rolled back with its transaction: " + result.error().message};
    for (std::size_t j = first; j < i; ++j) fail(*batch[j], lost);
    return i + 1;
  }
  auto commit = run_simple(*db_, "COMMIT", "commit");
  if (!commit) {
    if (db_->in_transaction()) (void)run_simple(*db_, "ROLLBACK", "rollback");
    for (std::size_t i = first; i < batch.size(); ++i) fail(*batch[i], commit.error());
  } else {
    std::lock_guard lock(mutex_);
    ++transactions_;
  }
  return batch.size();
}

}  // namespace sandci::agent::store
