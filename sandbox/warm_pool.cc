#include "sandbox/warm_pool.h"

#include <algorithm>
#include <chrono>
#include <iterator>

#include <nlohmann/json.hpp>

namespace sandci::sandbox {

namespace {

// How often a job waiting for a start under way looks at its cancel flag.
constexpr auto kCancelPoll = std::chrono::milliseconds(100);

// A sandbox that was started before its job asked: the job waited for none of
// its start, so it reports none.
class WarmSandbox final : public Sandbox {
 public:
  WarmSandbox(std::unique_ptr<Sandbox> inner, StartTimings waited) : inner_(std::move(inner)), waited_(waited) {}
  const std::string& id() const override { return inner_->id(); }
  StartTimings start_timings() const override { return waited_; }
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line) override {
    return inner_->exec(request, on_line);
  }
  ExitStatus exec(const ExecRequest& request, const LineCallback& on_line, ExecIo& io) override {
    return inner_->exec(request, on_line, io);
  }
  std::expected<void, SandboxError> write_file(const std::string& container_path, const std::string& content,
                                               int mode) override {
    return inner_->write_file(container_path, content, mode);
  }
  std::expected<std::string, SandboxError> read_file(const std::string& container_path,
                                                     std::uint64_t max_bytes) override {
    return inner_->read_file(container_path, max_bytes);
  }
  std::expected<void, SandboxError> copy_out(const std::vector<std::string>& container_paths,
                                             const std::string& host_dir) override {
    return inner_->copy_out(container_paths, host_dir);
  }
  std::expected<void, SandboxError> copy_in(const std::string& host_dir, const std::string& container_dir) override {
    return inner_->copy_in(host_dir, container_dir);
  }
  void kill() override { inner_->kill(); }

 private:
  std::unique_ptr<Sandbox> inner_;
  StartTimings waited_;
};

}  // namespace

std::string spec_key(const SandboxSpec& spec) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : spec.mounts) mounts.push_back({m.host_path, m.container_path, m.read_only});
  const auto& l = spec.limits;
  return nlohmann::json{{"rootfs", spec.rootfs},
                        {"image", spec.image},
                        {"env", spec.env},
                        {"cwd", spec.working_dir},
                        {"uid", spec.uid},
                        {"gid", spec.gid},
                        {"tmpfs", spec.tmpfs},
                        {"mounts", mounts},
                        {"limits", {l.memory_bytes, l.cpus, l.pids, l.log_bytes}},
                        {"network", spec.network}}
      .dump();
}

WarmPool::WarmPool(SandboxBackend& inner, std::size_t per_spec, std::size_t starts_at_once, AheadSlots slots,
                   std::chrono::milliseconds start_wait)
    : inner_(inner),
      per_spec_(per_spec),
      starts_at_once_(std::max<std::size_t>(1, starts_at_once)),
      start_wait_(start_wait),
      slots_(std::move(slots)) {
  if (per_spec_ == 0) return;
  for (std::size_t i = 0; i < starts_at_once_; ++i)
    workers_.emplace_back([this] { worker_loop(); });
}

WarmPool::~WarmPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  for (auto& worker : workers_) worker.join();
  std::size_t unused = 0;
  for (const auto& [key, kind] : kinds_) unused += kind.ready.size();
  kinds_.clear();  // destroys the sandboxes nobody took
  if (slots_.give_back)
    for (std::size_t i = 0; i < unused; ++i) slots_.give_back();
}

bool WarmPool::drop_idle() {
  std::unique_ptr<Sandbox> dropped;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, kind] : kinds_) {
      if (kind.ready.empty()) continue;
      dropped = std::move(kind.ready.back());
      kind.ready.pop_back();
      break;
    }
  }
  if (!dropped) return false;
  dropped.reset();
  if (slots_.give_back) slots_.give_back();
  return true;
}

WarmPool::Kind& WarmPool::kind_for(const std::string& key, const SandboxSpec& spec) {
  auto [it, added] = kinds_.try_emplace(key);
  if (added) {
    it->second.spec = spec;
    it->second.spec.name_hint = "warm";
  }
  return it->second;
}

// Queues starts until the spec has what its next jobs need: per_spec, or fewer
// when fewer jobs are expected. A create waiting for a start under way will
// take that one, so it does not count as ahead.
void WarmPool::top_up(const std::string& key, Kind& kind) {
  const std::size_t want = kind.expected ? std::min(per_spec_, *kind.expected) : per_spec_;
  auto ahead = [&] {
    const std::size_t coming = kind.ready.size() + kind.queued + kind.running;
    return coming > kind.waiting ? coming - kind.waiting : 0;
  };
  while (ahead() < want) {
    ++kind.queued;
    queue_.push_back(key);
  }
  changed_.notify_all();
}

// Takes back a start that has not begun: the job asking starts its own now.
void WarmPool::unqueue_one(const std::string& key, Kind& kind) {
  for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
    if (*it != key) continue;
    queue_.erase(std::next(it).base());
    --kind.queued;
    return;
  }
}

void WarmPool::expect(const SandboxSpec& spec, std::size_t jobs) {
  // A job's own network namespace is its alone (see create).
  if (per_spec_ == 0 || !spec.network_namespace.empty()) return;
  const std::string key = spec_key(spec);
  std::lock_guard lock(mutex_);
  Kind& kind = kind_for(key, spec);
  kind.expected = jobs;
  top_up(key, kind);
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> WarmPool::create(const SandboxSpec& spec) {
  static const std::atomic<bool> never{false};
  return create(spec, never);
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> WarmPool::create(const SandboxSpec& spec,
                                                                       const std::atomic<bool>& cancelled) {
  // A job with its own network namespace is one of a kind: never pooled.
  if (per_spec_ == 0 || !spec.network_namespace.empty()) return inner_.create(spec);
  const std::string key = spec_key(spec);
  const auto asked = std::chrono::steady_clock::now();
  std::unique_ptr<Sandbox> warm;
  bool waited = false;
  {
    std::unique_lock lock(mutex_);
    Kind& kind = kind_for(key, spec);
    if (kind.expected && *kind.expected > 0) --*kind.expected;
    if (kind.ready.empty() && kind.running > kind.waiting) {
      // A start under way began before this job asked: waiting for it is never
      // slower than starting another, and costs no second start.
      ++kind.waiting;
      top_up(key, kind);
      // Bounded, and polled for cancellation: a start that never ends (a wedged
      // backend) must not hold the job, nor a cancelled run, for good.
      const auto give_up = asked + start_wait_;
      auto done = [&] { return stopping_ || !kind.ready.empty() || kind.running < kind.waiting; };
      while (!done() && !cancelled.load() && std::chrono::steady_clock::now() < give_up) {
        changed_.wait_until(lock, std::min(give_up, std::chrono::steady_clock::now() + kCancelPoll));
      }
      --kind.waiting;
      waited = true;
      if (cancelled.load() && kind.ready.empty()) {
        top_up(key, kind);
        return std::unexpected(SandboxError{"cancelled while waiting for a sandbox start"});
      }
    } else if (kind.ready.empty() && kind.queued > 0) {
      unqueue_one(key, kind);
    }
    if (!kind.ready.empty()) {
      warm = std::move(kind.ready.front());
      kind.ready.pop_front();
    }
    top_up(key, kind);
  }
  if (!warm) return create_cold(spec);
  if (slots_.give_back) slots_.give_back();  // the job holds its own slot
  StartTimings waited_for;
  if (waited) waited_for.start = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - asked);
  return std::unique_ptr<Sandbox>(std::make_unique<WarmSandbox>(std::move(warm), waited_for));
}

// A job's own start counts among the starts at once: the background ones wait
// for it rather than slow it down (it is on the job's critical path).
std::expected<std::unique_ptr<Sandbox>, SandboxError> WarmPool::create_cold(const SandboxSpec& spec) {
  {
    std::lock_guard lock(mutex_);
    ++starts_;
  }
  auto created = inner_.create(spec);
  std::lock_guard lock(mutex_);
  --starts_;
  changed_.notify_all();
  return created;
}

void WarmPool::worker_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (!queue_.empty() && starts_ < starts_at_once_); });
    if (stopping_) break;
    const std::string key = queue_.front();
    queue_.pop_front();
    Kind& kind = kinds_.at(key);
    --kind.queued;
    if (slots_.take && !slots_.take()) {
      changed_.notify_all();  // no free slot: not started ahead
      continue;
    }
    ++kind.running;
    const SandboxSpec spec = kind.spec;
    ++starts_;
    lock.unlock();
    auto created = inner_.create(spec);
    lock.lock();
    --starts_;
    --kind.running;
    ++started_;
    // A failed start is not retried here: the next job starts cold and says why.
    if (created) kind.ready.push_back(std::move(*created));
    else if (slots_.give_back) slots_.give_back();
    changed_.notify_all();
  }
  changed_.notify_all();
}

std::size_t WarmPool::idle() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, kind] : kinds_) n += kind.ready.size();
  return n;
}

std::size_t WarmPool::started() const {
  std::lock_guard lock(mutex_);
  return started_;
}

void WarmPool::wait_idle() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] {
    if (stopping_) return true;
    if (!queue_.empty()) return false;
    for (const auto& [key, kind] : kinds_)
      if (kind.running > 0) return false;
    return true;
  });
}

}  // namespace sandci::sandbox
