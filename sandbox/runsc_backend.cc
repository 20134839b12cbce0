#include "sandbox/runsc_backend.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "sandbox/oci_spec.h"
#include "sandbox/process.h"
#include "sandbox/runsc_sandbox.h"

namespace sandci::sandbox {

namespace {
namespace fs = std::filesystem;

// A process is identified by pid and start time: pids are reused, the pair is not.
std::string process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return {};
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Fields after the name start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return field;
  }
  return {};
}

std::string owner_record() {
  pid_t self = ::getpid();
  return std::to_string(self) + " " + process_start_time(self) + "\n";
}

// True unless the bundle's owner file names a process that is still running.
bool owner_is_gone(const std::string& bundle) {
  std::ifstream in(bundle + "/owner");
  pid_t pid = 0;
  std::string start;
  if (!(in >> pid >> start)) return true;
  return process_start_time(pid) != start;
}

std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += digits[rng() % 16];
  return s;
}
}  // namespace

std::string sanitize_id_part(const std::string& hint, std::size_t max_len) {
  std::string s;
  for (char c : hint) {
    if (s.size() >= max_len) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (c >= 'A' && c <= 'Z') {
      s += static_cast<char>(c - 'A' + 'a');
    } else {
      s += ok ? c : '-';
    }
  }
  return s;
}

RunscBackend::RunscBackend(RunscOptions options)
    : options_(std::move(options)),
      root_(options_.state_dir + "/runsc"),
      bundles_(options_.state_dir + "/bundles") {}

std::expected<std::unique_ptr<RunscBackend>, SandboxError> RunscBackend::open(RunscOptions options) {
  if (options.state_dir.empty() || options.state_dir[0] != '/') {
    return std::unexpected(SandboxError{"runsc backend: state_dir must be an absolute path"});
  }
  std::unique_ptr<RunscBackend> backend(new RunscBackend(std::move(options)));
  std::error_code ec;
  for (const auto& dir : {backend->root_, backend->bundles_}) {
    fs::create_directories(dir, ec);
    if (ec) return std::unexpected(SandboxError{"runsc backend: cannot create " + dir + ": " + ec.message()});
  }
  fs::permissions(backend->options_.state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  auto version = run_capture({backend->options_.runsc, "--version"});
  if (!version || !version->ok()) {
    return std::unexpected(SandboxError{"runsc backend: cannot run " + backend->options_.runsc + ": " +
                                       (version ? version->describe() : version.error())});
  }
  backend->reap_stale();
  return backend;
}

// gVisor's network stack (--network=sandbox) copies the links of the job's
// namespace, but runsc 20240729 first refuses any namespace in which
// /proc/sys/net/core/rmem_default exists, taking it for the host's: kernels
// from 6.x show that file in every namespace (gVisor issue 10704, fixed in
// later releases). `runsc run` therefore starts in a private mount namespace
// where /proc/sys/net is an empty read-only tmpfs; nothing else in it differs,
// and the sandbox makes its own mount namespace as always. exec keeps the pid,
// so the supervisor is still our child.
std::vector<std::string> RunscBackend::netstack_workaround_prefix() {
  return {"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
          "mount -t tmpfs -o ro,size=4k sandci-netns-mask /proc/sys/net && exec \"$@\"", "sh"};
}

std::string RunscBackend::new_id(const std::string& hint) {
  // Unique across processes sharing a state dir (pid + random) and readable in
  // `runsc list` (the hint).
  std::string id = "sandci";
  std::string part = sanitize_id_part(hint);
  if (!part.empty()) id += "-" + part;
  return id + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_) + "-" + random_hex(6);
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> RunscBackend::create(const SandboxSpec& spec) {
  if (spec.network) {
    return std::unexpected(SandboxError{
        "the runsc backend gives a job no network, or the network namespace the runner made for it "
        "(network_namespace), never the host's"});
  }
  if (!spec.network_namespace.empty() && !fs::exists(spec.network_namespace)) {
    return std::unexpected(SandboxError{"network namespace not found: " + spec.network_namespace});
  }
  if (spec.rootfs.empty() || spec.rootfs[0] != '/' || !fs::is_directory(spec.rootfs)) {
    return std::unexpected(SandboxError{"image root filesystem not found: " + spec.rootfs});
  }
  for (const auto& dir : spec.tmpfs) {
    if (dir.empty() || dir[0] != '/') return std::unexpected(SandboxError{"tmpfs target must be absolute: " + dir});
  }
  for (const auto& m : spec.mounts) {
    if (!fs::exists(m.host_path)) return std::unexpected(SandboxError{"mount source not found: " + m.host_path});
    if (m.container_path.empty() || m.container_path[0] != '/') {
      return std::unexpected(SandboxError{"mount target must be absolute: " + m.container_path});
    }
  }

  const auto bundle_started = std::chrono::steady_clock::now();
  std::string id = new_id(spec.name_hint);
  std::string bundle = bundles_ + "/" + id;
  // Built under a dot name and renamed: reap_stale (maybe in another process)
  // never sees a bundle folder without its owner file.
  std::string staging = bundles_ + "/." + id;
  std::error_code ec;
  fs::create_directory(staging, ec);
  if (ec) return std::unexpected(SandboxError{"cannot create " + staging + ": " + ec.message()});
  bool written = static_cast<bool>(std::ofstream(staging + "/owner") << owner_record());
  {
    std::ofstream config(staging + "/config.json");
    config << make_config(spec, RunscSandbox::cgroups_path_for(id)).dump(2);
    written = written && config.flush();
  }
  if (!written || ::rename(staging.c_str(), bundle.c_str()) != 0) {
    fs::remove_all(staging, ec);
    return std::unexpected(SandboxError{"cannot write the bundle " + bundle});
  }

  RunscCommand command{options_.runsc,
                       {"--root=" + root_, spec.network_namespace.empty() ? "--network=none" : "--network=sandbox",
                        "--overlay2=" + options_.overlay},
                       spec.network_namespace.empty() ? std::vector<std::string>{} : netstack_workaround_prefix()};
  if (!options_.platform.empty()) command.global_flags.push_back("--platform=" + options_.platform);
  command.global_flags.insert(command.global_flags.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  const auto bundle_time = std::chrono::steady_clock::now() - bundle_started;
  auto sandbox = RunscSandbox::start(std::move(command), id, bundle, spec);
  if (!sandbox) return std::unexpected(sandbox.error());
  (*sandbox)->set_bundle_time(std::chrono::duration_cast<std::chrono::nanoseconds>(bundle_time));
  return std::unique_ptr<Sandbox>(std::move(*sandbox));
}

ReapReport RunscBackend::reap_stale() {
  ReapReport report;
  RunscCommand command{options_.runsc, {"--root=" + root_}, {}};
  // Bounded: runsc asks each listed sandbox for its state, and a wedged one
  // would otherwise hold the agent's start for good.
  auto listed = run_capture(command.argv({"list", "--format=json"}), 1 << 20, std::chrono::seconds(60));
  if (!listed || !listed->ok()) {
    report.errors.push_back("runsc list: " + (listed ? listed->describe() : listed.error()));
  } else {
    auto containers = nlohmann::json::parse(listed->out, nullptr, false);
    if (containers.is_array()) {
      for (const auto& c : containers) {
        std::string id = c.value("id", "");
        std::string bundle = c.value("bundle", "");
        if (id.empty()) continue;
        // Everything under our --root is ours; only a live owner's sandboxes stay.
        if (!bundle.empty() && !owner_is_gone(bundle)) continue;
        auto errors = RunscSandbox::destroy(command, id, bundle.empty() ? bundles_ + "/" + id : bundle);
        report.errors.insert(report.errors.end(), errors.begin(), errors.end());
        ++report.containers;
      }
    }
  }
  // Bundles whose sandbox never started (or whose runsc state is already gone).
  std::error_code ec;
  std::vector<fs::path> folders;  // listed first: removing while iterating is unspecified
  for (const auto& entry : fs::directory_iterator(bundles_, ec)) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  for (const auto& folder : folders) {
    if (!owner_is_gone(folder)) continue;
    std::string id = folder.filename();
    if (id.starts_with(".")) {
      // A staging folder: reap it only once its owner file says who died.
      if (!fs::exists(folder / "owner")) continue;
      fs::remove_all(folder, ec);
      ++report.bundles;
      continue;
    }
    auto errors = RunscSandbox::destroy(command, id, folder);
    report.errors.insert(report.errors.end(), errors.begin(), errors.end());
    ++report.bundles;
  }
  return report;
}

}  // namespace sandci::sandbox
