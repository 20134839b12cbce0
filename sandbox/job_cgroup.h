#pragma once
// The cgroup runsc creates for one sandbox (linux.cgroupsPath). runsc applies the
// limits; we only read the counters that tell why a sandbox died, and remove the
// folders runsc leaves when a sandbox did not end cleanly. Works on cgroup v1
// (one hierarchy per controller) and v2 (unified).
#include <cstdint>
#include <string>

namespace sandci::sandbox {

class JobCgroup {
 public:
  // `path` as in config.json, absolute within each hierarchy ("/sandci-<id>").
  explicit JobCgroup(std::string path, std::string mount_root = "/sys/fs/cgroup");
  const std::string& path() const { return path_; }
  // Times the kernel's OOM killer acted in this cgroup (0 if unreadable).
  std::uint64_t oom_kills() const;
  // Times a fork failed because the pids limit was reached (0 if unreadable).
  std::uint64_t pids_limit_hits() const;
  // Removes the cgroup's folder in every hierarchy; missing ones are fine.
  // Returns false if some folder still exists afterwards.
  bool remove() const;
  bool exists() const;

 private:
  bool unified() const;
  std::string file(const char* controller, const char* name) const;

  std::string path_;
  std::string root_;
};

}  // namespace sandci::sandbox
