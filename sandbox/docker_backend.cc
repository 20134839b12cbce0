#include "sandbox/docker_backend.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "sandbox/docker_sandbox.h"
#include "sandbox/job_network.h"
#include "sandbox/oci_spec.h"
#include "sandbox/process.h"

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
  if (!backend->options_.egress_runtime.empty()) {
    if (auto checked = backend->client_.check_engine(backend->options_.egress_runtime); !checked)
      return std::unexpected(SandboxError{"docker_egress_runtime: " + checked.error().message});
  }
  if (auto reaped = backend->reap_stale(); !reaped) backend->startup_reap_error_ = reaped.error().message;
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

DockerBackend::~DockerBackend() {
  if (users_dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(users_dir_, ec);
}

std::expected<std::optional<nlohmann::json>, ImageError> DockerBackend::inspect_image(const std::string& image) const {
  auto inspected = client_.call("GET", "/images/" + url_encode(image) + "/json");
  if (!inspected) return std::unexpected(ImageError{ImageErrorKind::kFailed, inspected.error().message});
  if (inspected->status == 404) return std::nullopt;
  if (inspected->status != 200) {
    return std::unexpected(ImageError{ImageErrorKind::kFailed, "looking up image '" + image +
                                                                   "': the Docker engine said " +
                                                                   std::to_string(inspected->status) + ": " +
                                                                   inspected->message()});
  }
  auto parsed = nlohmann::json::parse(inspected->body, nullptr, false);
  if (!parsed.is_object()) {
    return std::unexpected(ImageError{ImageErrorKind::kFailed, "looking up image '" + image +
                                                                   "': the Docker engine's answer is not JSON"});
  }
  return parsed;
}

std::expected<void, ImageError> DockerBackend::pull(const std::string& image) const {
  // "host:5000/team/app:1": the tag follows the last ':' after the last '/'.
  auto colon = image.rfind(':');
  const bool tagged = colon != std::string::npos && image.find('/', colon) == std::string::npos;
  const bool digest = image.find('@') != std::string::npos;
  std::string target = "/images/create?fromImage=" + url_encode(tagged && !digest ? image.substr(0, colon) : image);
  if (!digest) target += "&tag=" + url_encode(tagged ? image.substr(colon + 1) : "latest");
  // A pull streams progress until it is done: minutes for a big image on a slow
  // link, so it gets the bound of a copy rather than of a control call.
  auto pulled = client_.call("POST", target, {}, HelperBounds{}.copy);
  if (!pulled) return std::unexpected(ImageError{ImageErrorKind::kFailed, "pulling image '" + image + "': " +
                                                                              pulled.error().message});
  // The engine streams progress lines and reports a failed pull in one of them.
  std::string failure;
  std::size_t start = 0;
  while (pulled->status == 200 && start < pulled->body.size()) {
    auto end = pulled->body.find('\n', start);
    if (end == std::string::npos) end = pulled->body.size();
    auto line = nlohmann::json::parse(pulled->body.substr(start, end - start), nullptr, false);
    if (line.is_object() && line.contains("error")) failure = line.value("error", std::string("failed"));
    start = end + 1;
  }
  if (pulled->status != 200) failure = pulled->message();
  if (!failure.empty()) {
    return std::unexpected(ImageError{ImageErrorKind::kNotFound, "pulling image '" + image +
                                                                     "' into the Docker engine failed: " + failure});
  }
  return {};
}

namespace {
// The content of the one regular file in a tar stream (an archive API answer
// for a single path), past any PAX or GNU long-name headers; empty for anything
// else (a link, a folder).
std::string single_tar_file(const std::string& tar) {
  for (std::size_t at = 0; at + 512 <= tar.size();) {
    const char type = tar[at + 156];
    const std::uint64_t size = std::strtoull(std::string(tar.data() + at + 124, 12).c_str(), nullptr, 8);
    if (at + 512 + size > tar.size()) return {};
    if (type == '0' || type == '\0') return tar.substr(at + 512, static_cast<std::size_t>(size));
    if (type != 'x' && type != 'g' && type != 'L') return {};
    at += 512 + (size + 511) / 512 * 512;
  }
  return {};
}
}  // namespace

std::expected<std::filesystem::path, ImageError> DockerBackend::copy_user_files(const std::string& id,
                                                                                const std::string& name) {
  auto failed = [&](const std::string& why) {
    return std::unexpected(ImageError{ImageErrorKind::kFailed, "reading the users of image '" + name + "': " + why});
  };
  // A container that is never started: the archive API reads its files. It
  // carries the owner label too, so a crash between create and delete leaves
  // nothing that reap_stale would not find.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json body = {{"Image", id},
                         {"Entrypoint", {"true"}},
                         {"Cmd", nlohmann::json::array()},
                         {"NetworkDisabled", true},
                         {"Labels", {{kOwnerLabel, std::string(host) + ":" + std::to_string(::getpid())}}},
                         {"HostConfig", {{"NetworkMode", "none"}}}};
  auto created = client_.call_json("POST", "/containers/create", body, "creating a container to read its users");
  if (!created) return failed(created.error().message);
  const std::string container = created->value("Id", "");
  std::string files[2];
  const char* paths[2] = {"/etc/passwd", "/etc/group"};
  std::string error;
  for (int i = 0; i < 2 && error.empty(); ++i) {
    auto memfd = make_memfd("sandci-image-users");
    if (!memfd) {
      error = memfd.error();
      break;
    }
    auto got = client_.get_to_fd("/containers/" + container + "/archive?path=" + url_encode(paths[i]), memfd->get());
    if (!got) {
      error = got.error().message;
    } else if (got->status == 200) {
      std::string tar(static_cast<std::size_t>(::lseek(memfd->get(), 0, SEEK_END)), '\0');
      if (::pread(memfd->get(), tar.data(), tar.size(), 0) == static_cast<ssize_t>(tar.size()))
        files[i] = single_tar_file(tar);
    }  // 404: the image has no such file; resolve_image_user then says who is missing
  }
  (void)client_.call("DELETE", "/containers/" + container + "?force=1&v=1");
  if (!error.empty()) return failed(error);
  std::lock_guard lock(mutex_);
  if (users_dir_.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sandci-docker-users-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return failed("cannot create a temporary folder");
    users_dir_ = tmpl;
  }
  const auto dir = std::filesystem::path(users_dir_) / std::to_string(++counter_) / "etc";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return failed(ec.message());
  std::ofstream(dir / "passwd", std::ios::binary) << files[0];
  std::ofstream(dir / "group", std::ios::binary) << files[1];
  return dir.parent_path();
}

std::expected<ImageInfo, ImageError> DockerBackend::image_info(std::string_view name) {
  const std::string image(name);
  if (image.empty()) return std::unexpected(ImageError{ImageErrorKind::kInvalid, "no Docker image given for the job"});
  // Asked each time (one small request): a tag may name a newer image tomorrow.
  auto inspected = inspect_image(image);
  if (!inspected) return std::unexpected(inspected.error());
  if (!*inspected) {
    if (!options_.allow_pull) {
      return std::unexpected(ImageError{
          ImageErrorKind::kNotFound,
          "image '" + image + "' is not in the Docker engine at " + client_.socket_path() +
              " (load it with docker load or docker import, or let the agent pull it: sandbox.docker_pull: true)"});
    }
    if (auto pulled = pull(image); !pulled) return std::unexpected(pulled.error());
    inspected = inspect_image(image);
    if (!inspected) return std::unexpected(inspected.error());
    if (!*inspected) {
      return std::unexpected(ImageError{ImageErrorKind::kNotFound,
                                        "image '" + image + "' is not in the Docker engine even after a pull"});
    }
  }
  const nlohmann::json& config = (**inspected)["Config"];
  ImageInfo info;
  info.name = image;
  info.source = "Docker engine at " + client_.socket_path();
  info.created = (**inspected).value("Created", "");
  if ((**inspected)["Size"].is_number_unsigned()) info.size_bytes = (**inspected)["Size"].get<std::uint64_t>();
  if (config.is_object()) {
    if (config["Env"].is_array())
      for (const auto& e : config["Env"])
        if (e.is_string()) info.config.env.push_back(e.get<std::string>());
    if (config["WorkingDir"].is_string()) info.config.working_dir = config["WorkingDir"].get<std::string>();
    if (config["User"].is_string()) info.config.user = config["User"].get<std::string>();
  }
  if (!info.config.user.empty()) {
    // Remembered by image id: the same id always has the same files.
    const std::string id = (**inspected).value("Id", image);
    {
      std::lock_guard lock(mutex_);
      if (auto it = users_.find(id); it != users_.end()) info.rootfs = it->second;
    }
    if (info.rootfs.empty()) {
      auto users = copy_user_files(id, image);
      if (!users) return std::unexpected(users.error());
      info.rootfs = *users;
      std::lock_guard lock(mutex_);
      users_.emplace(id, *users);
    }
  }
  return info;
}

bool DockerBackend::has_image(std::string_view name) const {
  auto inspected = inspect_image(std::string(name));
  return inspected && inspected->has_value();
}

std::expected<std::unique_ptr<Sandbox>, SandboxError> DockerBackend::create(const SandboxSpec& spec) {
  if (!spec.network_namespace.empty() && options_.egress_runtime.empty()) {
    return std::unexpected(SandboxError{
        "network egress on the docker backend needs sandbox.docker_egress_runtime: an engine runtime that is runsc "
        "with --network=sandbox (docs/security.md, \"Egress on the Docker backend\")"});
  }
  if (!spec.network_namespace.empty() && !std::filesystem::exists(spec.network_namespace)) {
    return std::unexpected(SandboxError{"network namespace not found: " + spec.network_namespace});
  }
  const auto started = Clock::now();
  const std::string image = spec.image.empty() ? options_.image : spec.image;
  auto info = image_info(image);
  if (!info) return std::unexpected(SandboxError{info.error().message});

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
      // The image's WorkingDir stays the container's, as with `docker run` (the
      // engine creates it); each exec names its own (the job's workspace).
      {"Env", spec.env},
      {"User", std::to_string(spec.uid) + ":" + std::to_string(spec.gid)},
      {"NetworkDisabled", !spec.network},
      {"Labels", {{kOwnerLabel, std::string(host) + ":" + std::to_string(::getpid())}}},
      {"HostConfig", host_config(options_, spec)},
  };
  std::string holder;
  if (!spec.network_namespace.empty()) {
    auto started_holder = start_network_holder(spec, image, name + "-net");
    if (!started_holder) return std::unexpected(started_holder.error());
    holder = *started_holder;
    body["NetworkDisabled"] = false;
    body["HostConfig"]["NetworkMode"] = "container:" + holder;
    body["HostConfig"]["Runtime"] = options_.egress_runtime;
    body.erase("Hostname");  // the engine refuses one with a shared namespace: the holder's is "sandci"
  }
  auto remove_holder = [&] {
    if (!holder.empty()) (void)client_.call("DELETE", "/containers/" + holder + "?force=1&v=1");
  };
  auto created = client_.call_json("POST", "/containers/create?name=" + url_encode(name), body,
                                   "creating the job's container from " + image);
  if (!created) {
    remove_holder();
    return std::unexpected(created.error());
  }
  const std::string id = created->value("Id", "");
  if (id.empty()) {
    remove_holder();
    return std::unexpected(SandboxError{"creating the job's container: no Id in the engine's answer"});
  }
  auto sandbox = DockerSandbox::start(client_, id, options_.cgroup_parent + "/" + id, spec, Clock::now() - started);
  if (!sandbox) {
    (void)client_.call("DELETE", "/containers/" + id + "?force=1&v=1");
    remove_holder();
    return std::unexpected(sandbox.error());
  }
  if (!holder.empty()) (*sandbox)->remove_with(holder);
  return std::unique_ptr<Sandbox>(std::move(*sandbox));
}

std::expected<std::string, SandboxError> DockerBackend::start_network_holder(const SandboxSpec& spec,
                                                                             const std::string& image,
                                                                             const std::string& name) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  // It only holds the namespace the engine makes for it: no network inside
  // (the plain runtime), no mounts, no capabilities, a few MiB.
  const nlohmann::json body = {
      {"Image", image},
      {"Hostname", "sandci"},  // the job's container shares it (its own would conflict)
      {"Entrypoint", {"/bin/sh", "-c", "while :; do sleep 3600 & wait; done"}},
      {"Cmd", nlohmann::json::array()},
      {"User", std::to_string(spec.uid) + ":" + std::to_string(spec.gid)},
      {"Labels", {{kOwnerLabel, std::string(host) + ":" + std::to_string(::getpid())}}},
      {"HostConfig",
       {{"Runtime", options_.runtime},
        {"NetworkMode", "none"},
        {"Memory", 64ll << 20},
        {"MemorySwap", 64ll << 20},
        {"PidsLimit", 64},
        {"CapDrop", nlohmann::json::array({"ALL"})},
        {"SecurityOpt", nlohmann::json::array({"no-new-privileges"})},
        {"LogConfig", {{"Type", "none"}, {"Config", nlohmann::json::object()}}}}},
  };
  auto created = client_.call_json("POST", "/containers/create?name=" + url_encode(name), body,
                                   "creating the holder of the job's network namespace");
  if (!created) return std::unexpected(created.error());
  const std::string id = created->value("Id", "");
  if (id.empty()) return std::unexpected(SandboxError{"creating the network holder: no Id in the engine's answer"});
  auto fail = [&](std::string message) -> std::expected<std::string, SandboxError> {
    (void)client_.call("DELETE", "/containers/" + id + "?force=1&v=1");
    return std::unexpected(SandboxError{std::move(message)});
  };
  auto started = client_.call_json("POST", "/containers/" + id + "/start", nullptr, "starting the network holder");
  if (!started) return fail(started.error().message);
  auto inspected = client_.call_json("GET", "/containers/" + id + "/json", nullptr, "inspecting the network holder");
  if (!inspected) return fail(inspected.error().message);
  // The engine's own file for the namespace it made (exec-root/netns/<id>).
  std::string netns;
  if (const auto& settings = (*inspected)["NetworkSettings"]; settings.is_object())
    netns = settings.value("SandboxKey", "");
  if (netns.empty()) return fail("the network holder has no network namespace (no SandboxKey)");
  if (auto moved = JobNetwork::move_job_end(spec.network_namespace, netns); !moved) return fail(moved.error().message);
  return id;
}

}  // namespace sandci::sandbox
