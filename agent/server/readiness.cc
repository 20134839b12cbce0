#include "agent/server/readiness.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sandbox/image_tools.h"

namespace sandci::agent::server {
namespace fs = std::filesystem;

namespace {

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
  return buf;
}

// A byte written and fsynced beside the store: a full or read-only file system
// fails here before a delivery would.
std::optional<std::string> durable_write_fails(const fs::path& dir) {
  const fs::path probe = dir / ".readyz-probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create " + probe.string() + ": " + std::strerror(errno);
  std::optional<std::string> problem;
  if (::write(fd, "1", 1) != 1 || ::fsync(fd) != 0) problem = "cannot write " + probe.string() + ": " + std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return problem;
}

}  // namespace

std::optional<std::string> probe_runsc_binary(const std::string& runsc) {
  auto ran = sandbox::run_tool({runsc, "--version"}, 4096);
  if (!ran) return ran.error();
  if (ran->exit_code != 0) return runsc + " --version exited with " + std::to_string(ran->exit_code);
  return std::nullopt;
}

Readiness::Readiness(store::RunStore& store, ReadinessOptions options)
    : store_(store), options_(std::move(options)) {}

std::vector<ReadinessCheck> Readiness::check() { return {check_store(), check_runsc(), check_disk()}; }

ReadinessCheck Readiness::check_store() {
  ReadinessCheck check{"store", false, ""};
  if (!store_.count_runs(store::RunState::queued)) {
    check.detail = "the run store does not answer";
    return check;
  }
  if (auto problem = durable_write_fails(options_.state_dir)) {
    check.detail = *problem;
    return check;
  }
  check.ok = true;
  check.detail = "answers; " + options_.state_dir.string() + " takes a durable write";
  return check;
}

ReadinessCheck Readiness::check_runsc() {
  std::lock_guard lock(runsc_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (runsc_checked_ && now - *runsc_checked_ < options_.runsc_probe_interval) return runsc_last_;
  auto problem = options_.probe_runsc ? options_.probe_runsc() : std::optional<std::string>("no runsc probe");
  runsc_last_ = {"runsc", !problem, problem ? *problem : "starts"};
  runsc_checked_ = now;
  return runsc_last_;
}

ReadinessCheck Readiness::check_disk() const {
  ReadinessCheck check{"disk", false, ""};
  struct statvfs st {};
  if (::statvfs(options_.state_dir.c_str(), &st) != 0) {
    check.detail = "cannot read the free space of " + options_.state_dir.string() + ": " + std::strerror(errno);
    return check;
  }
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  check.ok = free_bytes >= options_.min_free_bytes;
  check.detail = gib(free_bytes) + " free in " + options_.state_dir.string() + " (ready above " +
                 gib(options_.min_free_bytes) + ")";
  return check;
}

}  // namespace sandci::agent::server
