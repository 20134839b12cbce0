#pragma once
// The Docker Engine backend: each sandbox is an engine container (runtime runsc
// by default, so gVisor is still underneath) driven through the Engine API over
// its unix socket (docker_api.h), never the docker CLI. The container's init only
// keeps it alive; every step is an exec into it. Containers carry the label
// sandci.owner=<pid>, so those of a crashed agent can be found and removed.
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "sandbox/docker_api.h"
#include "sandbox/sandbox.h"

namespace sandci::sandbox {

struct DockerOptions {
  std::string socket;  // empty: DOCKER_HOST (unix://PATH), else /var/run/docker.sock
  // HostConfig.Runtime. Anything but runsc drops the gVisor layer (runc shares
  // the host kernel): only with an explicit setting, see docs/security.md.
  std::string runtime = "runsc";
  // The engine image used when a spec names none (SandboxSpec::image).
  std::string image;
  // Pull a missing image from the engine's registry; off: a missing image is an error.
  bool allow_pull = false;
  // Where the engine puts containers' cgroups (cgroupfs driver: /docker/<id>);
  // read for the OOM and pids-limit counters only.
  std::string cgroup_parent = "/docker";
};

class DockerBackend final : public SandboxBackend {
 public:
  // Checks the engine (running, reachable, API >= 1.41, runtime registered) and
  // removes containers left by dead owners (reap_stale).
  static std::expected<std::unique_ptr<DockerBackend>, SandboxError> open(DockerOptions options);

  // Creates and starts the job's container: image from spec.image (else the
  // options' image), which must already be in the engine unless allow_pull.
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override;

  // Removes containers labelled by a sandci process that no longer runs; returns
  // how many. Another live process's containers are left alone.
  std::expected<int, SandboxError> reap_stale();

  const DockerClient& client() const { return client_; }
  const DockerOptions& options() const { return options_; }

 private:
  DockerBackend(DockerOptions options, std::string socket);
  std::expected<void, SandboxError> ensure_image(const std::string& image);

  DockerOptions options_;
  DockerClient client_;
  std::atomic<std::uint64_t> counter_{0};
  std::mutex mutex_;  // guards images_
  std::set<std::string> images_;  // known present in the engine
};

}  // namespace sandci::sandbox
