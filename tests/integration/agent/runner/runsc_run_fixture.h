#pragma once

// The set-up the run engine's tests over real gVisor sandboxes share
// (action_steps_test, step_shell_test, prestarted_sandbox_test): a runsc
// backend whose state lives in a fresh folder, a workspace beside it, the test
// images plus a busybox-only one, and a run of the workspace's workflow
// through prepare_run + execute_run whose logs are read back.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/runner/run_engine.h"
#include "sandbox/image_store.h"
#include "sandbox/runsc_backend.h"
#include "support/files.h"
#include "support/temp_dir.h"

namespace sandci::agent::runsc_run {

namespace fs = std::filesystem;

inline const fs::path kImageState = "/var/cache/sandci/image-test-state";

using sandci::testing::read_file;
using sandci::testing::write_file;

struct Ran {
  RunResult result = RunResult::failure;
  std::map<std::string, std::string> logs;       // job id -> its log
  std::map<std::string, std::string> summaries;  // job id -> its step summary
  std::vector<scheduler::JobReport> jobs;
  std::string summary(const std::string& job) const { return summaries.count(job) ? summaries.at(job) : ""; }
};

class RunscRunTest : public ::testing::Test {
 protected:
  // prefix names the temp folder; busybox_tools are the applets busybox_image() links.
  RunscRunTest(const std::string& prefix, std::vector<std::string> busybox_tools)
      : dir_(prefix), busybox_tools_(std::move(busybox_tools)) {}

  void SetUp() override {
    ASSERT_TRUE(fs::exists(kImageState / "images")) << "test images missing: run scripts/test-setup.sh";
    sandbox::RunscOptions options;
    options.state_dir = (dir_.path() / "runsc").string();
    auto backend = sandbox::RunscBackend::open(options);
    ASSERT_TRUE(backend) << backend.error().message;
    backend_ = std::move(*backend);
    fs::create_directories(workspace());
  }

  fs::path workspace() const { return dir_.path() / "workspace"; }

  // An environment on backend: the test images and busybox:test, the masker,
  // run and logs folders under dir_, run id 7. Tests set the rest.
  RunEnvironment environment(sandbox::SandboxBackend& backend) {
    RunEnvironment env;
    env.backend = &backend;
    env.images = [this](std::string_view name) -> std::expected<sandbox::ImageInfo, sandbox::ImageError> {
      if (name == "busybox:test") return busybox_image();
      return store_.lookup(name);
    };
    env.masker = &masker_;
    env.run_dir = dir_.path() / "run";
    env.logs_dir = dir_.path() / "logs";
    env.run_id = "7";
    return env;
  }

  // Runs the workspace's workflows (a push to main of acme/app) in env and
  // reads back each job's log and step summary.
  Ran run_workspace(const RunEnvironment& env) {
    RunSource src;
    src.ref = "refs/heads/main";
    src.repository = "acme/app";
    src.workspace = workspace();
    RunTrigger trigger;
    auto prepared = prepare_run(src, trigger);
    Ran ran;
    if (!prepared) {
      for (const auto& m : prepared.error().messages) ADD_FAILURE() << m;
      return ran;
    }
    std::atomic<bool> cancel{false};
    WorkflowHooks hooks;
    hooks.finished = [&](const PlannedWorkflow&, const scheduler::RunReport& report) { ran.jobs = report.jobs; };
    ran.result = execute_run(*prepared, src, trigger, env, cancel, hooks);
    for (const auto& entry : fs::directory_iterator(env.logs_dir)) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with(".summary.md")) ran.summaries[name.substr(0, name.size() - 11)] = read_file(entry.path());
      else if (name.ends_with(".log")) ran.logs[name.substr(0, name.size() - 4)] = read_file(entry.path());
    }
    return ran;
  }

  // An image with nothing but a static busybox: no C library, no bash, no node.
  sandbox::ImageInfo busybox_image() {
    const fs::path root = dir_.path() / "busybox-rootfs";
    if (!fs::exists(root / "bin" / "busybox")) {
      fs::create_directories(root / "bin");
      fs::create_directories(root / "tmp");
      fs::copy_file("/usr/bin/busybox", root / "bin" / "busybox");
      for (const auto& tool : busybox_tools_) fs::create_symlink("busybox", root / "bin" / tool);
    }
    sandbox::ImageInfo info;
    info.name = "busybox:test";
    info.rootfs = root;
    info.config.env = {"PATH=/bin"};
    return info;
  }

  sandci::testing::TempDir dir_;
  sandbox::ImageStore store_{kImageState};
  std::unique_ptr<sandbox::RunscBackend> backend_;
  SecretMasker masker_;

 private:
  std::vector<std::string> busybox_tools_;
};

}  // namespace sandci::agent::runsc_run
