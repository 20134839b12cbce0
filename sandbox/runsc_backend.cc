#include "sandbox/runsc_backend.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <thread>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "sandbox/job_cgroup.h"
#include "sandbox/oci_spec.h"
#include "sandbox/process.h"
#include "sandbox/runsc_sandbox.h"

namespace sandci::sandbox {

namespace {
namespace fs = std::filesystem;

// A process is identified by pid and start time: pids are reused, the pair is not.
std::string process_start_time(pid_t pid) {
  // Empty when the process is gone (read_proc_file: never an exception).
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat").value_or("");
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

enum class Owner { alive, gone, unknown };

// Who owns a bundle folder: `unknown` when its owner file is missing or says
// nothing readable.
Owner owner_of(const fs::path& folder) {
  std::ifstream in(folder / "owner");
  pid_t pid = 0;
  std::string start;
  if (!(in >> pid >> start)) return Owner::unknown;
  return process_start_time(pid) == start ? Owner::alive : Owner::gone;
}

// True unless the bundle's owner file names a process that is still running. A
// bundle (renamed into place only once its owner file was written) whose owner
// cannot be read is broken, and counts as gone.
bool owner_is_gone(const std::string& bundle) { return owner_of(bundle) != Owner::alive; }

// True when `folder` is a staging folder (".<id>", a bundle being written)
// whose owner is known to be dead. One whose owner file is missing or cannot be
// read may be in the middle of being written by a live process (the reaping
// runs beside `sandci run`'s first starts): it is left alone.
bool staging_owner_is_dead(const fs::path& folder) { return owner_of(folder) == Owner::gone; }

// The owner file, renamed into place once written: a reaper in another thread
// or process never reads it half-written.
bool write_owner_file(const std::string& folder) {
  const std::string staging = folder + "/.owner";
  {
    std::ofstream out(staging);
    out << owner_record();
    if (!out.flush()) return false;
  }
  return ::rename(staging.c_str(), (folder + "/owner").c_str()) == 0;
}

bool process_exists(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// A process that has exited but not been waited for (a zombie) holds nothing.
bool process_running(pid_t pid) {
  const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat").value_or("");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

// SIGKILLs `pids` and waits (10 s at most) until none runs; false if some still does.
bool kill_and_wait(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  for (int i = 0; i < 100; ++i) {
    bool any = false;
    for (pid_t pid : pids) any = any || process_running(pid);
    if (!any) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Stops whatever still works on a dead owner's sandbox, so that nothing creates
// it (or its cgroup) again after it is removed.
void stop_processes_of(const std::string& id, ReapReport& report) {
  // Each names the id (or its bundle, named after it) in its arguments: `runsc
  // run`/`create` still building it, its sandbox and gofer, `runsc exec`s.
  const auto pids = host_processes_mentioning(id);
  if (!pids.empty() && !kill_and_wait(pids)) report.errors.push_back("processes of " + id + " did not die");
}

// The pid of the process that made sandbox `id` (sandci[-hint]-<pid>-<n>-<hex>), 0 if
// the id has another form.
pid_t creator_of(const std::string& id) {
  std::vector<std::string> parts;
  std::istringstream in(id);
  for (std::string part; std::getline(in, part, '-');) parts.push_back(part);
  if (parts.size() < 4 || parts[0] != "sandci") return 0;
  const std::string& pid = parts[parts.size() - 3];
  const std::string& counter = parts[parts.size() - 2];
  if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos ||
      counter.empty() || counter.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return static_cast<pid_t>(std::stoi(pid));
}

// The processes in cgroup `path` (as in config.json), in any hierarchy.
std::vector<pid_t> processes_in(const std::string& mount_root, const std::string& path) {
  std::set<pid_t> pids;
  std::error_code ec;
  std::vector<fs::path> folders{mount_root + path};
  for (fs::directory_iterator it(mount_root, ec), end; !ec && it != end; it.increment(ec)) {
    folders.push_back(it->path().string() + path);
  }
  for (const auto& folder : folders) {
    std::ifstream in(folder / "cgroup.procs");
    for (pid_t pid = 0; in >> pid;) pids.insert(pid);
  }
  pids.erase(::getpid());
  return {pids.begin(), pids.end()};
}

// The sandbox ids that have a cgroup folder ("sandci-<id>") in some hierarchy.
std::set<std::string> sandbox_cgroups(const std::string& mount_root) {
  std::set<std::string> ids;
  std::vector<fs::path> hierarchies{mount_root};
  std::error_code ec;
  if (!fs::exists(mount_root + "/cgroup.controllers", ec)) {
    hierarchies.clear();
    for (fs::directory_iterator it(mount_root, ec), end; !ec && it != end; it.increment(ec)) {
      hierarchies.push_back(it->path());
    }
  }
  for (const auto& hierarchy : hierarchies) {
    for (fs::directory_iterator it(hierarchy, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename();
      if (name.starts_with("sandci-sandci") && it->is_directory(ec)) ids.insert(name.substr(7));
    }
    ec.clear();
  }
  return ids;
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
  if (backend->options_.check_on_open) {
    if (auto checked = backend->check_runsc(); !checked) return std::unexpected(checked.error());
    backend->startup_reap_ = backend->reap_stale();
  }
  return backend;
}

std::expected<void, SandboxError> RunscBackend::check_runsc() {
  auto version = run_capture({options_.runsc, "--version"});
  if (!version || !version->ok()) {
    return std::unexpected(SandboxError{"runsc backend: cannot run " + options_.runsc + ": " +
                                       (version ? version->describe() : version.error())});
  }
  return {};
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
  bool written = write_owner_file(staging);
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
  // Never thrown: a folder or process vanishing mid-scan must not stop the agent's
  // start; what was not reaped is reaped by the next start.
  try {
    reap_into(report);
  } catch (const std::exception& e) {
    report.errors.push_back(std::string("reaping stopped early: ") + e.what());
  }
  return report;
}

void RunscBackend::reap_into(ReapReport& report) {
  RunscCommand command{options_.runsc, {"--root=" + root_}, {}};
  // First stop every process still working on a dead owner's sandbox (a `runsc
  // run` of an agent killed while creating one goes on and finishes it), so that
  // what is listed below is all there is and stays so.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(bundles_, ec)) {
    std::string id = entry.path().filename();
    const bool staging = id.starts_with(".");
    if (staging) id.erase(0, 1);
    if (!entry.is_directory()) continue;
    const bool dead = staging ? staging_owner_is_dead(entry.path())
                              : fs::exists(entry.path() / "owner") && owner_is_gone(entry.path());
    if (dead) stop_processes_of(id, report);
  }
  ec.clear();
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
  std::vector<fs::path> folders;  // listed first: removing while iterating is unspecified
  for (const auto& entry : fs::directory_iterator(bundles_, ec)) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  for (const auto& folder : folders) {
    std::string id = folder.filename();
    if (id.starts_with(".")) {
      // A staging folder: reaped only once its owner file says who died.
      if (!staging_owner_is_dead(folder)) continue;
      fs::remove_all(folder, ec);
      ++report.bundles;
      continue;
    }
    if (!owner_is_gone(folder)) continue;
    auto errors = RunscSandbox::destroy(command, id, folder);
    report.errors.insert(report.errors.end(), errors.begin(), errors.end());
    ++report.bundles;
  }
  reap_orphan_cgroups(report);
}

void RunscBackend::reap_orphan_cgroups(ReapReport& report) {
  for (const auto& id : sandbox_cgroups(cgroup_root_)) {
    const pid_t creator = creator_of(id);
    // A live creator's cgroups are its own business (pids may be reused: a live
    // process with the creator's pid keeps the cgroup, erring on the safe side).
    if (creator <= 0 || process_exists(creator)) continue;
    std::error_code ec;
    if (fs::exists(bundles_ + "/" + id, ec)) continue;  // reaped above, or failed to be
    stop_processes_of(id, report);
    JobCgroup cgroup(RunscSandbox::cgroups_path_for(id), cgroup_root_);
    const auto members = processes_in(cgroup_root_, cgroup.path());
    if (!members.empty() && !kill_and_wait(members)) report.errors.push_back("processes in " + cgroup.path() + " did not die");
    bool removed = cgroup.remove();
    for (int i = 0; i < 20 && !removed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // its last processes are exiting
      removed = cgroup.remove();
    }
    if (removed) ++report.cgroups;
    else report.errors.push_back("cgroup " + cgroup.path() + " could not be removed");
  }
}

}  // namespace sandci::sandbox
