#pragma once
// Shared by the sandbox integration tests: a real runsc backend with its own
// state dir per test process (so ctest -j runs stay apart), the test rootfs,
// and helpers to run a command and collect its output.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/runsc_backend.h"

namespace sandci::sandbox::testing {

// Built by scripts/ensure-test-rootfs.sh (make test runs it via test-setup.sh).
inline constexpr const char* kTestRootfs = "/var/cache/sandci/rootfs-bookworm";

// The process-wide backend, created on first use. At the end of the test
// program the environment checks that nothing of it is left (no container in
// `runsc list`, no runsc process, no cgroup) and removes the state dir.
RunscBackend& backend();
const std::string& state_dir();

// A fresh host folder, removed at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Output {
  ExitStatus status;
  std::vector<OutputLine> lines;
  std::string out() const;  // stdout lines joined with '\n' (trailing '\n' each)
  std::string err() const;
};

class SandboxTest : public ::testing::Test {
 protected:
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

std::string describe(const ExitStatus& status);
// Host processes whose command line contains `needle` (a sandbox id, a --root).
std::vector<int> host_processes_mentioning(const std::string& needle);
std::string read_host_file(const std::string& path);
void write_host_file(const std::string& path, const std::string& content);

}  // namespace sandci::sandbox::testing
