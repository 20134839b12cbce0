#include "sandbox/docker_backend.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "sandbox/docker_sandbox.h"
#include "sandbox/oci_spec.h"

namespace sandci::sandbox {

namespace {
using Clock = std::chrono::steady_clock;
constexpr const char* kOwnerLabel = "sandci.owner";

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*; keeps the hint short and readable.
std::string name_part(const std::string& hint) {
  std::string out;
  for (char c : hint) {
    if (out.size() >= 24) break;
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') ? c : '-';
  }
  return out.empty() ? "job" : out;
}

nlohmann::json host_config(const DockerOptions& options, const SandboxSpec& spec) {
  nlohmann::json tmpfs = {{"/tmp", "rw,exec,mode=1777"}};
  for (const auto& dir : spec.tmpfs) tmpfs[dir] = "rw,exec,mode=1777";
  nlohmann::json binds = nlohmann::json::array();
  for (const auto& m : spec.mounts) {
    // Writable mounts are copies (seeded into the container's own layer), so
    // the host folder stays untouched whatever the job writes.
    if (m.read_only) binds.push_back(m.host_path + ":" + m.container_path + ":ro");
  }
  nlohmann::json caps = nlohmann::json::array();
  if (spec.uid == 0) {
    for (const auto& cap : job_capabilities()) caps.push_back(cap);
  }
  const auto memory = static_cast<std::int64_t>(spec.limits.memory_bytes);
  return {
      {"Runtime", options.runtime},
      {"NetworkMode", spec.network ? "default" : "none"},
      {"Memory", memory},
      {"MemorySwap", memory},  // no swap beyond the limit
      {"NanoCpus", static_cast<std::int64_t>(spec.limits.cpus * 1e9)},
      {"PidsLimit", spec.limits.pids},
      {"ReadonlyRootfs", false},  // the image's layers stay read-only; writes go to the container's layer
      {"CapDrop", nlohmann::json::array({"ALL"})},
      {"CapAdd", caps},
      {"SecurityOpt", nlohmann::json::array({"no-new-privileges"})},
      {"Tmpfs", tmpfs},
      {"Binds", binds},
      {"LogConfig", {{"Type", "none"}, {"Config", nlohmann::json::object()}}},
  };
}
}  // namespace

DockerBackend::DockerBackend(DockerOptions options, std::string socket)
    : options_(std::move(options)), client_(std::move(socket)) {}

std::expected<std::unique_ptr<DockerBackend>, SandboxError> DockerBackend::open(DockerOptions options) {
  std::string socket = options.socket;
  if (socket.empty()) {
    auto from_env = docker_socket_from_env();
    if (!from_env) return std::unexpected(from_env.error());
    socket = *from_env;
  }
  if (options.runtime.empty()) return std::unexpected(SandboxError{"no Docker runtime given (e.g. runsc)"});
  std::unique_ptr<DockerBackend> backend(new DockerBackend(std::move(options), std::move(socket)));
  if (auto checked = backend->client_.check_engine(backend->options_.runtime); !checked) {
    return std::unexpected(checked.error());
  }
  (void)backend->reap_stale();
  return backend;
}

std::expected<int, SandboxError> DockerBackend::reap_stale() {
  const std::string filters = nlohmann::json{{"label", {kOwnerLabel}}}.dump();
  auto listed = client_.call_json("GET", "/containers/json?all=1&filters=" + url_encode(filters), nullptr,
                                  "listing sandci's containers");
  if (!listed) return std::unexpected(listed.error());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  int removed = 0;
  for (const auto& container : *listed) {
    const auto& labels = container["Labels"];
    if (!labels.is_object() || !labels.contains(kOwnerLabel)) continue;
    // "<host>:<pid>": only this machine's dead owners are judged.
    const std::string owner = labels[kOwnerLabel].get<std::string>();
    auto colon = owner.rfind(':');
    if (colon == std::string::npos || owner.substr(0, colon) != host) continue;
    const int pid = std::atoi(owner.c_str() + colon + 1);
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM) continue;
    auto deleted = client_.call("DELETE", "/containers/" + container.value("Id", "") + "?force=1&v=1");
    if (deleted && deleted->status < 300) ++removed;
  }
  return removed;
}

std::expected<void, SandboxError> DockerBackend::ensure_image(const std::string& image) {
  {
    std::lock_guard lock(mutex_);
    if (images_.contains(image)) return {};
  }
  auto inspected = client_.call("GET", "/images/" + url_encode(image) + "/json");
  if (!inspected) return std::unexpected(inspected.error());
  if (inspected->status == 404) {
    if (!options_.allow_pull) {
      return std::unexpected(SandboxError{"image " + image + " is not in the Docker engine at " +
                                          client_.socket_path() + " (load it with docker import/load, or allow "
                                          "pulling with sandbox.docker_pull: true)"});
    }
    auto colon = image.rfind(':');
    const bool tagged = colon != std::string::npos && image.find('/', colon) == std::string::npos;
    const std::string target = "/images/create?fromImage=" + url_encode(tagged ? image.substr(0, colon) : image) +
                               "&tag=" + url_encode(tagged ? image.substr(colon + 1) : "latest");
    auto pulled = client_.call("POST", target);
    if (!pulled) return std::unexpected(pulled.error());
    // The engine streams progress and reports a failed pull inside the body.
    if (pulled->status != 200 || pulled->body.find("\"error\"") != std::string::npos) {
      return std::unexpected(SandboxError{"pulling image " + image + " failed: " + pulled->message()});
    }
  } else if (inspected->status != 200) {
    return std::unexpected(SandboxError{"looking up image " + image + ": the Docker engine said " +
                                        std::to_string(inspected->status) + ": " + inspected->message()});
  }
  std::lock_guard lock(mutex_);
  images_.insert(image);
  return {};
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> DockerBackend::create(const SandboxSpec& spec) {
  if (!spec.network_namespace.empty()) {
    return std::unexpected(SandboxError{"network egress needs the runsc backend"});
  }
  const auto started = Clock::now();
  const std::string image = spec.image.empty() ? options_.image : spec.image;
  if (image.empty()) return std::unexpected(SandboxError{"no Docker image given for the job"});
  if (auto present = ensure_image(image); !present) return std::unexpected(present.error());

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string name = "sandci-" + name_part(spec.name_hint) + "-" + std::to_string(::getpid()) + "-" +
                           std::to_string(++counter_);
  nlohmann::json body = {
      {"Image", image},
      {"Hostname", "sandci"},  // as in the runsc backend's sandboxes
      // The init keeps the container alive between execs and prepares the
      // private folder the exec wrapper uses. Being pid 1 it inherits what steps
      // leave behind; `wait` reaps them (sh waits with waitpid(-1)), so killed
      // background jobs do not linger as zombies.
      {"Entrypoint", {"/bin/sh", "-c",
                      std::string("mkdir -p -m 1777 ") + DockerSandbox::kStateDir +
                          "; while :; do sleep 3600 & wait; done"}},
      {"Cmd", nlohmann::json::array()},
      {"Env", spec.env},
      {"WorkingDir", spec.working_dir},
      {"User", std::to_string(spec.uid) + ":" + std::to_string(spec.gid)},
      {"NetworkDisabled", !spec.network},
      {"Labels", {{kOwnerLabel, std::string(host) + ":" + std::to_string(::getpid())}}},
      {"HostConfig", host_config(options_, spec)},
  };
  auto created = client_.call_json("POST", "/containers/create?name=" + url_encode(name), body,
                                   "creating the job's container from " + image);
  if (!created) return std::unexpected(created.error());
  const std::string id = created->value("Id", "");
  if (id.empty()) return std::unexpected(SandboxError{"creating the job's container: no Id in the engine's answer"});
  auto sandbox = DockerSandbox::start(client_, id, options_.cgroup_parent + "/" + id, spec, Clock::now() - started);
  if (!sandbox) {
    (void)client_.call("DELETE", "/containers/" + id + "?force=1&v=1");
    return std::unexpected(sandbox.error());
  }
  return std::unique_ptr<Sandbox>(std::move(*sandbox));
}

}  // namespace sandci::sandbox
