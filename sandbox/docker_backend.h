#pragma once
// The Docker Engine backend: each sandbox is an engine container (runtime runsc
// by default, so gVisor is still underneath) driven through the Engine API over
// its unix socket (docker_api.h), never the docker CLI. The container's init only
// keeps it alive; every step is an exec into it. Containers carry the label
// sandci.owner=<pid>, so those of a crashed agent can be found and removed.
#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "sandbox/docker_api.h"
#include "sandbox/image_store.h"
#include "sandbox/sandbox.h"

namespace sandci::sandbox {

struct DockerOptions {
  std::string socket;  // empty: DOCKER_HOST (unix://PATH), else /var/run/docker.sock
  // HostConfig.Runtime. Anything but runsc drops the gVisor layer (runc shares
  // the host kernel): only with an explicit setting, see docs/security.md.
  std::string runtime = "runsc";
  // The engine runtime for jobs granted egress (SandboxSpec::network_namespace):
  // runsc registered with --network=sandbox (gVisor's own network stack), via
  // scripts/runsc-egress where gVisor issue 10704 applies. Empty: such jobs are
  // refused. See docs/security.md, "Egress on the Docker backend".
  std::string egress_runtime;
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
  ~DockerBackend() override;  // removes the folder of image users (image_info)

  // Creates and starts the job's container: image from spec.image (else the
  // options' image), which must already be in the engine unless allow_pull.
  // With spec.network_namespace (a JobNetwork's job namespace): first a holder
  // container (runtime, no network) whose engine-made namespace receives the
  // job's end of the link (JobNetwork::move_job_end), then the job's container
  // in that namespace (NetworkMode container:<holder>) with egress_runtime.
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override;

  // The engine's image `name` ("node:20", "registry:5000/team/app:1") as a job
  // needs it, the way `docker run` reads it: config.env, config.working_dir and
  // config.user from the image's config. When the image names a user, `rootfs`
  // is a host folder holding only the image's etc/passwd and etc/group (copied
  // out through the archive API), so resolve_image_user() works as for stored
  // images; otherwise it is empty. A missing image is pulled when allow_pull,
  // else kNotFound with a message naming it.
  std::expected<ImageInfo, ImageError> image_info(std::string_view name);
  // Whether the engine has `name` now (never pulls); false when it cannot say.
  bool has_image(std::string_view name) const;

  // Removes containers labelled by a sandci process that no longer runs; returns
  // how many. Another live process's containers are left alone.
  std::expected<int, SandboxError> reap_stale();
  // Why the reap at open() failed; empty if it did not.
  const std::string& startup_reap_error() const { return startup_reap_error_; }

  const DockerClient& client() const { return client_; }
  const DockerOptions& options() const { return options_; }

 private:
  DockerBackend(DockerOptions options, std::string socket);
  // GET /images/{name}/json: the inspect answer, nullopt for 404.
  std::expected<std::optional<nlohmann::json>, ImageError> inspect_image(const std::string& image) const;
  std::expected<void, ImageError> pull(const std::string& image) const;
  // Starts the holder of a job's network namespace and moves the job's link
  // into it; returns the holder's id (removed again on error).
  std::expected<std::string, SandboxError> start_network_holder(const SandboxSpec& spec, const std::string& image,
                                                                const std::string& name);
  // A folder with etc/passwd and etc/group of the image `id` (named `name` in messages).
  std::expected<std::filesystem::path, ImageError> copy_user_files(const std::string& id, const std::string& name);

  DockerOptions options_;
  std::string startup_reap_error_;
  DockerClient client_;
  std::atomic<std::uint64_t> counter_{0};
  std::mutex mutex_;  // guards users_ and users_dir_
  std::map<std::string, std::filesystem::path> users_;  // image id -> its copied etc/passwd and etc/group
  std::string users_dir_;  // made on first use
};

}  // namespace sandci::sandbox
