#include "sandbox/warm_pool.h"

#include <nlohmann/json.hpp>

namespace sandci::sandbox {

namespace {

// A sandbox that was started before its job asked: the job waited for none of
// its start, so it reports none.
class WarmSandbox final : public Sandbox {
 public:
  explicit WarmSandbox(std::unique_ptr<Sandbox> inner) : inner_(std::move(inner)) {}
  const std::string& id() const override { return inner_->id(); }
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
};

}  // namespace

std::string spec_key(const SandboxSpec& spec) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const auto& m : spec.mounts) mounts.push_back({m.host_path, m.container_path, m.read_only});
  const auto& l = spec.limits;
  return nlohmann::json{{"rootfs", spec.rootfs},
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

WarmPool::WarmPool(SandboxBackend& inner, std::size_t per_spec) : inner_(inner), per_spec_(per_spec) {
  if (per_spec_ > 0) worker_ = std::thread([this] { refill_loop(); });
}

WarmPool::~WarmPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  ready_.clear();  // destroys the sandboxes nobody took
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> WarmPool::create(const SandboxSpec& spec) {
  // A job with its own network namespace is one of a kind: never pooled.
  if (per_spec_ == 0 || !spec.network_namespace.empty()) return inner_.create(spec);
  const std::string key = spec_key(spec);
  std::unique_ptr<Sandbox> warm;
  {
    std::lock_guard lock(mutex_);
    auto& ready = ready_[key];
    if (!ready.empty()) {
      warm = std::move(ready.front());
      ready.pop_front();
    }
    if (!specs_.contains(key)) {
      specs_[key] = spec;
      specs_[key].name_hint = "warm";
    }
    // Keep per_spec ready or starting for the next job of this spec.
    while (ready.size() + starting_[key] < per_spec_) {
      ++starting_[key];
      queue_.push_back(key);
    }
    changed_.notify_all();
  }
  if (warm) return std::unique_ptr<Sandbox>(std::make_unique<WarmSandbox>(std::move(warm)));
  return inner_.create(spec);
}

void WarmPool::refill_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    const std::string key = queue_.front();
    queue_.pop_front();
    const SandboxSpec spec = specs_.at(key);
    busy_ = true;
    lock.unlock();
    // One at a time, in the background: a start competes with running jobs for
    // the same cores, so the pool never starts several at once.
    auto created = inner_.create(spec);
    lock.lock();
    busy_ = false;
    --starting_[key];
    // A failed start is not retried here: the next job starts cold and says why.
    if (created) ready_[key].push_back(std::move(*created));
    changed_.notify_all();
  }
  queue_.clear();
  changed_.notify_all();
}

std::size_t WarmPool::idle() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, ready] : ready_) n += ready.size();
  return n;
}

void WarmPool::wait_idle() const {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return stopping_ || (queue_.empty() && !busy_); });
}

}  // namespace sandci::sandbox
