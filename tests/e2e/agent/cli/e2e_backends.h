#pragma once
// `sandci run` end-to-end tests on both sandbox backends: runsc driven directly,
// and the Docker engine (runtime runsc) of a private dockerd that the first
// Docker test of the binary starts (own socket, data root and exec root, no
// bridge, no iptables) and that is stopped when the binary ends, also when tests
// failed. The shared test image (debian:12) is imported into it under its name,
// so jobs find the same image on both backends.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <expected>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "e2e/agent/cli/e2e_support.h"
#include "sandbox/docker_api.h"
#include "support/private_dockerd.h"

namespace sandci::e2e {

enum class Backend { runsc, docker };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::docker ? "docker" : "runsc";
}

// For gtest's listings ("GetParam() = docker").
inline void PrintTo(Backend backend, std::ostream* out) { *out << (backend == Backend::docker ? "docker" : "runsc"); }

// The binary's private dockerd with debian:12 loaded; `daemon` is null after a
// failed start, and `error` says why.
struct E2eDockerd {
  std::unique_ptr<testing::PrivateDockerd> daemon;
  std::string error;
};

inline E2eDockerd& e2e_dockerd() {
  static E2eDockerd started = [] {
    E2eDockerd d;
    auto daemon = testing::PrivateDockerd::start();
    if (!daemon) {
      d.error = daemon.error();
      return d;
    }
    auto imported = (*daemon)->import_rootfs((shared_images_dir() / "debian%3A12" / "rootfs").string(), "debian:12");
    if (!imported) {
      d.error = "importing debian:12: " + imported.error();
      return d;
    }
    d.daemon = std::move(*daemon);
    return d;
  }();
  return started;
}

// What `sandci run` needs to use `backend` ("--backend docker --docker-socket ...").
inline std::vector<std::string> backend_args(Backend backend) {
  if (backend == Backend::runsc) return {};
  const auto& d = e2e_dockerd();
  return {"--backend", "docker", "--docker-socket", d.daemon ? d.daemon->socket() : "/nonexistent/docker.sock"};
}

// The containers in the private engine (all of them: the engine is this binary's
// own), as the engine lists them; "[]\n" when none.
inline std::string docker_containers() {
  const auto& d = e2e_dockerd();
  if (!d.daemon) return "no dockerd";
  auto listed = sandbox::DockerClient(d.daemon->socket()).call("GET", "/containers/json?all=1");
  return listed ? listed->body : listed.error().message;
}

// Makes engine image `name` from debian:12 with Dockerfile-style `changes`
// (ENV, WORKDIR, USER ...) through POST /commit of a container never started:
// quick, and it shares debian:12's layer.
inline std::expected<void, std::string> docker_image_from_debian(const std::string& name,
                                                                 const std::vector<std::string>& changes) {
  const auto& d = e2e_dockerd();
  if (!d.daemon) return std::unexpected(d.error);
  sandbox::DockerClient client(d.daemon->socket());
  auto created = client.call_json("POST", "/containers/create",
                                  {{"Image", "debian:12"}, {"Cmd", {"true"}}, {"HostConfig", {{"NetworkMode", "none"}}}},
                                  "creating a container to commit");
  if (!created) return std::unexpected(created.error().message);
  const std::string id = created->value("Id", "");
  auto encode = [](const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(buf);
    }
    return out;
  };
  const auto colon = name.rfind(':');
  std::string target = "/commit?container=" + id + "&repo=" + encode(name.substr(0, colon)) +
                       "&tag=" + encode(name.substr(colon + 1));
  for (const auto& change : changes) target += "&changes=" + encode(change);
  auto committed = client.call("POST", target);
  (void)client.call("DELETE", "/containers/" + id + "?force=1");
  if (!committed) return std::unexpected(committed.error().message);
  if (committed->status != 201 && committed->status != 200) return std::unexpected(committed->message());
  return {};
}

}  // namespace sandci::e2e
