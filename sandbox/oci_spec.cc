#include "sandbox/oci_spec.h"

#include <cmath>

namespace sandci::sandbox {

namespace {
constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::uint64_t kCpuPeriodUs = 100000;

std::string env_name(const std::string& entry) { return entry.substr(0, entry.find('=')); }

nlohmann::json capabilities_for(std::uint32_t uid) {
  // A non-root job gets no capabilities at all, as on Linux after exec.
  nlohmann::json caps = uid == 0 ? nlohmann::json(job_capabilities()) : nlohmann::json::array();
  return {{"bounding", caps}, {"effective", caps}, {"permitted", caps},
          {"inheritable", nlohmann::json::array()}, {"ambient", nlohmann::json::array()}};
}

nlohmann::json rlimits() {
  auto limit = [](const char* type, std::uint64_t value) {
    return nlohmann::json{{"type", type}, {"hard", value}, {"soft", value}};
  };
  return nlohmann::json::array({limit("RLIMIT_NOFILE", 65536), limit("RLIMIT_CORE", 0)});
}

nlohmann::json process_json(const std::vector<std::string>& args, const std::vector<std::string>& env,
                            const std::string& cwd, std::uint32_t uid, std::uint32_t gid) {
  return {{"terminal", false},
          {"user", {{"uid", uid}, {"gid", gid}}},
          {"args", args},
          {"env", env},
          {"cwd", cwd.empty() ? "/" : cwd},
          {"capabilities", capabilities_for(uid)},
          {"noNewPrivileges", true},
          {"rlimits", rlimits()}};
}
}  // namespace

const std::vector<std::string>& job_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
      "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_NET_BIND_SERVICE",
  };
  return caps;
}

const std::vector<std::string>& init_command() {
  // It says "ready" on stdout once the sandbox runs (execs are accepted from then
  // on), then keeps the sandbox alive between execs. Being pid 1, it inherits the
  // processes that steps leave behind; `wait` reaps them (sh waits with
  // waitpid(-1)), so killed background jobs do not linger as zombies.
  static const std::vector<std::string> cmd = {"/bin/sh", "-c", "echo ready; while :; do sleep 3600 & wait; done"};
  return cmd;
}

std::vector<std::string> merge_env(const std::vector<std::string>& base,
                                   const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  auto put = [&env](const std::string& entry) {
    for (auto& existing : env) {
      if (env_name(existing) == env_name(entry)) {
        existing = entry;
        return;
      }
    }
    env.push_back(entry);
  };
  put(kDefaultPath);
  for (const auto& e : base) put(e);
  for (const auto& e : overrides) put(e);
  return env;
}

nlohmann::json make_config(const SandboxSpec& spec, const std::string& cgroups_path) {
  nlohmann::json mounts = nlohmann::json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
       {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      // A private /tmp inside the sandbox's memory, never the host's.
      {{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"nosuid", "nodev", "mode=1777"}}},
  });
  for (const auto& dir : spec.tmpfs) {
    mounts.push_back({{"destination", dir}, {"type", "tmpfs"}, {"source", "tmpfs"},
                      {"options", {"nosuid", "nodev", "mode=1777"}}});
  }
  for (const auto& m : spec.mounts) {
    mounts.push_back({{"destination", m.container_path},
                      {"type", "bind"},
                      {"source", m.host_path},
                      {"options", {"rbind", m.read_only ? "ro" : "rw"}}});
  }

  const auto& limits = spec.limits;
  nlohmann::json resources = {
      {"memory", {{"limit", limits.memory_bytes}}},
      {"pids", {{"limit", limits.pids}}},
  };
  if (limits.cpus > 0) {
    resources["cpu"] = {{"period", kCpuPeriodUs},
                        {"quota", static_cast<std::int64_t>(std::llround(limits.cpus * kCpuPeriodUs))}};
  }

  nlohmann::json namespaces = nlohmann::json::array();
  for (const char* ns : {"pid", "network", "ipc", "uts", "mount"}) namespaces.push_back({{"type", ns}});
  // runsc's sandbox joins this namespace and copies its links and routes into
  // its own network stack (see docs/security.md, "Network egress").
  if (!spec.network_namespace.empty()) namespaces[1]["path"] = spec.network_namespace;

  return {
      {"ociVersion", "1.0.2"},
      {"process", process_json(init_command(), merge_env(spec.env, {}), "/", spec.uid, spec.gid)},
      // The image folder itself is never written: runsc's overlay takes every write
      // (see RunscOptions::overlay), so the root may look writable to the job.
      {"root", {{"path", spec.rootfs}, {"readonly", false}}},
      {"hostname", "sandci"},
      {"mounts", mounts},
      {"linux", {{"cgroupsPath", cgroups_path}, {"resources", resources}, {"namespaces", namespaces}}},
  };
}

nlohmann::json make_process(const SandboxSpec& spec, const ExecRequest& request) {
  const std::string& cwd = request.working_dir.empty() ? spec.working_dir : request.working_dir;
  return process_json(request.argv, merge_env(spec.env, request.env), cwd, spec.uid, spec.gid);
}

}  // namespace sandci::sandbox
