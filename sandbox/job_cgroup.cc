#include "sandbox/job_cgroup.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sandci::sandbox {

namespace {
// Reads "key value" lines (memory.oom_control, memory.events, pids.events).
std::uint64_t read_counter(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}
}  // namespace

JobCgroup::JobCgroup(std::string path, std::string mount_root)
    : path_(std::move(path)), root_(std::move(mount_root)) {}

bool JobCgroup::unified() const { return std::filesystem::exists(root_ + "/cgroup.controllers"); }

std::string JobCgroup::file(const char* controller, const char* name) const {
  return unified() ? root_ + path_ + "/" + name : root_ + "/" + controller + path_ + "/" + name;
}

std::uint64_t JobCgroup::oom_kills() const {
  return unified() ? read_counter(file("memory", "memory.events"), "oom_kill")
                   : read_counter(file("memory", "memory.oom_control"), "oom_kill");
}

std::uint64_t JobCgroup::pids_limit_hits() const { return read_counter(file("pids", "pids.events"), "max"); }

bool JobCgroup::exists() const {
  std::error_code ec;
  if (unified()) return std::filesystem::exists(root_ + path_, ec);
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    if (std::filesystem::exists(entry.path().string() + path_, ec)) return true;
  }
  return false;
}

bool JobCgroup::remove() const {
  if (path_.empty() || path_ == "/") return false;
  std::error_code ec;
  if (unified()) {
    ::rmdir((root_ + path_).c_str());
  } else {
    // A cgroup folder is removed with rmdir only (its files are virtual).
    for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
      ::rmdir((entry.path().string() + path_).c_str());
    }
  }
  return !exists();
}

}  // namespace sandci::sandbox
