#pragma once
// Shared by the sandbox integration tests: a real runsc backend with its own
// state dir per test process (so ctest -j runs stay apart), a real Docker backend
// on a private dockerd this process starts (and stops at its end), the test
// rootfs (imported into that dockerd as kTestImage), and helpers to run a
// command and collect its output. Contract tests run on both backends.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/docker_backend.h"
#include "sandbox/runsc_backend.h"
#include "support/temp_dir.h"

namespace sandci::sandbox::testing {

// Built by scripts/ensure-test-rootfs.sh (make test runs it via test-setup.sh).
inline constexpr const char* kTestRootfs = "/var/cache/sandci/rootfs-bookworm";

// The process-wide backend, created on first use. At the end of the test
// program the environment checks that nothing of it is left (no container in
// `runsc list`, no runsc process, no cgroup) and removes the state dir.
RunscBackend& backend();
const std::string& state_dir();

enum class BackendKind { kRunsc, kDocker };
// The image the private dockerd gets from kTestRootfs (docker import).
inline constexpr const char* kTestImage = "sandci-test:bookworm";
// The process-wide Docker backend on a private dockerd (own socket, data root,
// exec root, no bridge, runsc registered with --network=none), started on first
// use with kTestImage imported; stopped by pid when the test program ends,
// also when tests failed. Throws when dockerd cannot be started.
DockerBackend& docker_backend();
// unix socket path of the private dockerd (starts it).
const std::string& docker_socket();
SandboxBackend& backend_for(BackendKind kind);

// A fresh host folder, removed at scope exit.
using ::sandci::testing::TempDir;

struct Output {
  ExitStatus status;
  std::vector<OutputLine> lines;
  std::string out() const;  // stdout lines joined with '\n' (trailing '\n' each)
  std::string err() const;
};

class SandboxTest : public ::testing::Test {
 protected:
  // The backend under test: runsc unless a parameterized fixture says otherwise.
  virtual BackendKind kind() const { return BackendKind::kRunsc; }
  void SetUp() override;
  SandboxSpec default_spec() const;  // test rootfs, small limits, workspace mounted
  std::unique_ptr<Sandbox> make(const SandboxSpec& spec);
  std::unique_ptr<Sandbox> make() { return make(default_spec()); }
  static Output run(Sandbox& sandbox, std::vector<std::string> argv,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));
  static Output sh(Sandbox& sandbox, const std::string& script,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return run(sandbox, {"/bin/sh", "-c", script}, timeout);
  }

  TempDir workspace_;
};

// Contract tests that must hold on every backend: TEST_P, instantiated with
// INSTANTIATE_BOTH_BACKENDS.
class BothBackendsTest : public SandboxTest, public ::testing::WithParamInterface<BackendKind> {
 protected:
  BackendKind kind() const override { return GetParam(); }
};

std::string backend_param_name(const ::testing::TestParamInfo<BackendKind>& info);

#define INSTANTIATE_BOTH_BACKENDS(fixture)                                                             \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture,                                                          \
                           ::testing::Values(::sandci::sandbox::testing::BackendKind::kRunsc,          \
                                             ::sandci::sandbox::testing::BackendKind::kDocker),        \
                           ::sandci::sandbox::testing::backend_param_name)

std::string describe(const ExitStatus& status);
// Host processes whose command line contains `needle` (a sandbox id, a --root).
std::vector<int> host_processes_mentioning(const std::string& needle);
std::string read_host_file(const std::string& path);
void write_host_file(const std::string& path, const std::string& content);

}  // namespace sandci::sandbox::testing
