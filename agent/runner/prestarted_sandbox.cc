#include "agent/runner/prestarted_sandbox.h"

#include <chrono>

#include "sandbox/warm_pool.h"

namespace sandci::agent {

namespace {

// The job waited for none of the start, or for part of it: that is all it reports.
class TakenSandbox final : public sandbox::Sandbox {
 public:
  TakenSandbox(std::unique_ptr<sandbox::Sandbox> inner, sandbox::StartTimings waited)
      : inner_(std::move(inner)), waited_(waited) {}
  const std::string& id() const override { return inner_->id(); }
  sandbox::StartTimings start_timings() const override { return waited_; }
  sandbox::ExitStatus exec(const sandbox::ExecRequest& request, const sandbox::LineCallback& on_line) override {
    return inner_->exec(request, on_line);
  }
  sandbox::ExitStatus exec(const sandbox::ExecRequest& request, const sandbox::LineCallback& on_line,
                           sandbox::ExecIo& io) override {
    return inner_->exec(request, on_line, io);
  }
  std::expected<void, sandbox::SandboxError> write_file(const std::string& container_path, const std::string& content,
                                                        int mode) override {
    return inner_->write_file(container_path, content, mode);
  }
  std::expected<std::string, sandbox::SandboxError> read_file(const std::string& container_path,
                                                              std::uint64_t max_bytes) override {
    return inner_->read_file(container_path, max_bytes);
  }
  std::expected<void, sandbox::SandboxError> copy_out(const std::vector<std::string>& container_paths,
                                                      const std::string& host_dir) override {
    return inner_->copy_out(container_paths, host_dir);
  }
  std::expected<void, sandbox::SandboxError> copy_in(const std::string& host_dir,
                                                     const std::string& container_dir) override {
    return inner_->copy_in(host_dir, container_dir);
  }
  void kill() override { inner_->kill(); }

 private:
  std::unique_ptr<sandbox::Sandbox> inner_;
  sandbox::StartTimings waited_;
};

}  // namespace

PrestartedSandbox::PrestartedSandbox(sandbox::SandboxBackend& inner, JobSlots* slots)
    : inner_(inner), slots_(slots) {}

PrestartedSandbox::~PrestartedSandbox() {
  // First, so that no reclaim runs while this goes away.
  if (reclaimer_) slots_->remove_reclaimer(*reclaimer_);
  discard();
  if (starter_.joinable()) starter_.join();
}

bool PrestartedSandbox::start(const sandbox::SandboxSpec& spec) {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::kIdle) return false;
    if (slots_ && !slots_->try_acquire()) return false;
    state_ = State::kStarting;
    key_ = sandbox::spec_key(spec);
  }
  if (slots_) reclaimer_ = slots_->add_reclaimer([this] {
    auto box = take_unused(false);
    if (!box) return false;
    destroy(std::move(box));
    return true;
  });
  starter_ = std::thread([this, spec] {
    auto created = inner_.create(spec);
    std::lock_guard lock(mutex_);
    if (created) {
      ready_ = std::move(*created);
      state_ = State::kReady;
    } else {
      state_ = State::kGone;  // the job starts its own, and says why if that fails too
      if (slots_) slots_->release();
    }
    changed_.notify_all();
  });
  return true;
}

std::unique_ptr<sandbox::Sandbox> PrestartedSandbox::take_unused(bool wait) {
  std::unique_lock lock(mutex_);
  if (wait) changed_.wait(lock, [this] { return state_ != State::kStarting; });
  if (state_ != State::kReady) return nullptr;
  state_ = State::kGone;
  return std::move(ready_);
}

void PrestartedSandbox::destroy(std::unique_ptr<sandbox::Sandbox> box) {
  box.reset();  // kills and removes it (bundle, cgroup, runsc state)
  if (slots_) slots_->release();
}

void PrestartedSandbox::discard() {
  if (auto box = take_unused(true)) destroy(std::move(box));
}

std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> PrestartedSandbox::create(
    const sandbox::SandboxSpec& spec) {
  const auto asked = std::chrono::steady_clock::now();
  std::unique_ptr<sandbox::Sandbox> box;
  {
    std::unique_lock lock(mutex_);
    const bool mine =
        (state_ == State::kStarting || state_ == State::kReady) && !claimed_ && sandbox::spec_key(spec) == key_;
    if (mine) {
      claimed_ = true;
      // Waiting for a start under way is never slower than a second start.
      changed_.wait(lock, [this] { return state_ != State::kStarting; });
      if (state_ == State::kReady) {
        box = std::move(ready_);
        state_ = State::kTaken;
      }
    }
  }
  if (!box) return inner_.create(spec);
  if (slots_) slots_->release();  // the job holds its own slot
  sandbox::StartTimings waited;
  waited.start = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - asked);
  return std::unique_ptr<sandbox::Sandbox>(std::make_unique<TakenSandbox>(std::move(box), waited));
}

bool PrestartedSandbox::taken() const {
  std::lock_guard lock(mutex_);
  return state_ == State::kTaken;
}

}  // namespace sandci::agent
