#pragma once
// A private Docker daemon for tests and benchmarks: its own socket, data root,
// exec root and pid file in a fresh /tmp/sandci-dockerd-<owner pid>-XXXXXX,
// no bridge, no iptables, runsc registered as a runtime with --network=none
// (and as runsc-egress with gVisor's network stack, for jobs granted egress).
// Nothing global is touched (/var/run/docker.sock and /var/lib/docker are not
// used). Stopped by pid in the destructor; daemons of test runs that crashed are
// stopped and removed by the next start.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <expected>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/docker_api.h"
#include "sandbox/process.h"

namespace sandci::testing {

class PrivateDockerd {
 public:
  static constexpr const char* kPrefix = "/tmp/sandci-dockerd-";
  // The runtime registered for jobs granted egress (scripts/runsc-egress).
  static constexpr const char* kEgressRuntime = "runsc-egress";

  static std::expected<std::unique_ptr<PrivateDockerd>, std::string> start(
      const std::string& runsc = "/usr/bin/runsc") {
    reap_dead_runs();
    std::string tmpl = std::string(kPrefix) + std::to_string(::getpid()) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return std::unexpected("mkdtemp failed");
    std::unique_ptr<PrivateDockerd> d(new PrivateDockerd(tmpl));
    {
      std::ofstream config(d->dir_ + "/daemon.json");
      config << R"({"runtimes":{"runsc":{"path":")" << runsc << R"(","runtimeArgs":["--network=none"]})";
#ifdef SANDCI_SOURCE_DIR
      // Jobs granted egress: the project's own wrapper, as docs/security.md tells operators.
      config << R"(,")" << kEgressRuntime << R"(":{"path":")" << SANDCI_SOURCE_DIR
             << R"(/scripts/runsc-egress","runtimeArgs":["--network=sandbox"]})";
#endif
      config << "}}";
    }
    const std::string dockerd = std::filesystem::exists("/usr/sbin/dockerd") ? "/usr/sbin/dockerd" : "dockerd";
    if (dockerd == "dockerd" && !std::filesystem::exists("/usr/bin/dockerd")) {
      return std::unexpected("dockerd is not installed: scripts/install-deps.sh installs docker.io");
    }
    sandbox::Fd log(::open((d->dir_ + "/dockerd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    sandbox::SpawnRequest request{{dockerd, "--host", "unix://" + d->socket_, "--data-root", d->dir_ + "/data",
                                   "--exec-root", d->dir_ + "/exec", "--pidfile", d->dir_ + "/dockerd.pid",
                                   "--bridge", "none", "--iptables=false", "--ip-masq=false",
                                   "--config-file", d->dir_ + "/daemon.json"},
                                  -1, log.get(), log.get(), {}, true};
    auto child = sandbox::spawn(request);
    if (!child) return std::unexpected("cannot start dockerd: " + child.error());
    d->child_ = std::move(*child);
    sandbox::DockerClient client(d->socket_);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < give_up) {
      if (sandbox::wait_exit(d->child_, 0)) {
        return std::unexpected("dockerd exited at once: " + d->log_tail());
      }
      auto ping = client.call("GET", "/_ping");
      if (ping && ping->status == 200) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::unexpected("dockerd did not answer within 90 s: " + d->log_tail());
  }

  ~PrivateDockerd() {
    if (child_.pid > 0) {
      ::kill(child_.pid, SIGTERM);
      if (!sandbox::wait_exit(child_, 20000)) ::kill(child_.pid, SIGKILL);
      sandbox::wait_child(child_);
    }
    clean_up(dir_);
  }

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }

  // Loads a root filesystem folder as image `name` ("repo:tag") through the
  // Engine API (POST /images/create?fromSrc=-), as `docker import` does.
  std::expected<void, std::string> import_rootfs(const std::string& rootfs, const std::string& name) const {
    auto colon = name.rfind(':');
    auto pipe = sandbox::make_pipe();
    if (!pipe) return std::unexpected(pipe.error());
    sandbox::SpawnRequest tar{{"tar", "-C", rootfs, "--numeric-owner", "-cf", "-", "."}, -1, pipe->write.get(), -1, {}};
    auto child = sandbox::spawn(tar);
    pipe->write.reset();
    if (!child) return std::unexpected(child.error());
    sandbox::DockerClient client(socket_);
    auto response = client.upload_from_fd(
        "POST", "/images/create?fromSrc=-&repo=" + name.substr(0, colon) + "&tag=" + name.substr(colon + 1),
        pipe->read.get(), "application/x-tar", std::chrono::minutes(10));
    pipe->read.reset();
    sandbox::wait_child(*child);
    if (!response) return std::unexpected(response.error().message);
    if (response->status != 200 || response->body.find("\"error\"") != std::string::npos) {
      return std::unexpected("import of " + rootfs + " failed: " + response->message());
    }
    return {};
  }

 private:
  explicit PrivateDockerd(std::string dir) : dir_(std::move(dir)), socket_(dir_ + "/docker.sock") {}

  std::string log_tail() const {
    std::ifstream in(dir_ + "/dockerd.log");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

  static std::vector<int> processes_mentioning(const std::string& needle) {
    std::vector<int> found;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      // A process may end mid-scan: its file then reads as nothing, no exception.
      const std::string cmdline = sandbox::read_proc_file(it->path() / "cmdline").value_or("");
      if (cmdline.find(needle) != std::string::npos) found.push_back(std::stoi(name));
    }
    return found;
  }

  // What a daemon under `dir` left: its containerd and shims (they name the
  // dir on their command lines), mounts, files.
  static void clean_up(const std::string& dir) {
    for (int round = 0; round < 20; ++round) {
      auto left = processes_mentioning(dir + "/");
      if (left.empty()) break;
      for (int pid : left) {
        if (pid != ::getpid()) ::kill(pid, round < 10 ? SIGTERM : SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::vector<std::string> mounts;
    std::ifstream in("/proc/self/mounts");
    std::string device, point, rest;
    while (in >> device >> point && std::getline(in, rest)) {
      if (point.starts_with(dir + "/")) mounts.push_back(point);
    }
    std::sort(mounts.rbegin(), mounts.rend());  // deepest first
    for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  static void reap_dead_runs() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
      std::string path = entry.path();
      if (!path.starts_with(kPrefix)) continue;
      int owner = std::atoi(path.c_str() + std::strlen(kPrefix));
      if (owner <= 0 || owner == ::getpid() || ::kill(owner, 0) == 0) continue;
      clean_up(path);
    }
  }

  std::string dir_, socket_;
  sandbox::Child child_;
};

}  // namespace sandci::testing
