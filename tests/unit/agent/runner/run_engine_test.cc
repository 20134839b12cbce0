// prepare_run and execute_run over a scripted sandbox backend: a workflow that
// cannot be prepared fails on its own while the others run, and the triggered
// workflows of a run go side by side within the run's capacity.
#include "agent/runner/run_engine.h"
#include "support/temp_dir.h"
#include "support/files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::write_file;
using sandci::testing::TempDir;
using namespace std::chrono_literals;

std::string joined(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& line : lines) all += line + "\n";
  return all;
}

const char* kGood = R"(name: good
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: make
)";

// A key GitHub accepts at job level but a sandbox without network cannot honour.
const char* kServices = R"(on: push
jobs:
  test:
    runs-on: ubuntu-latest
    services:
      db:
        image: postgres:16
    steps:
      - run: make check
)";

// A remote reusable workflow, with no actions source to fetch it from.
const char* kRemoteCall = R"(name: fuzz
on: push
jobs:
  fuzz:
    uses: example/fuzzing/.github/workflows/fuzz.yml@v1
)";

class PrepareRunTest : public ::testing::Test {
 protected:
  RunSource source() const {
    RunSource s;
    s.ref = "refs/heads/main";
    s.repository = "example/project";
    s.workspace = dir_.path();
    return s;
  }
  void add(const std::string& name, const std::string& text) {
    write_file(dir_.path() / ".github/workflows" / name, text);
  }
  TempDir dir_{"sandci-run-engine-"};
};

TEST_F(PrepareRunTest, BrokenWorkflowsAreReportedAndTheOthersPrepared) {
  add("ci.yml", kGood);
  add("db.yml", kServices);
  add("fuzz.yml", kRemoteCall);
  auto prepared = prepare_run(source(), RunTrigger{});
  ASSERT_TRUE(prepared) << joined(prepared.error().messages);
  ASSERT_EQ(prepared->workflows.size(), 1u);
  EXPECT_EQ(prepared->workflows[0].file, ".github/workflows/ci.yml");
  ASSERT_EQ(prepared->broken.size(), 2u);
  std::sort(prepared->broken.begin(), prepared->broken.end(),
            [](const BrokenWorkflow& a, const BrokenWorkflow& b) { return a.file < b.file; });
  const BrokenWorkflow& db = prepared->broken[0];
  EXPECT_EQ(db.file, ".github/workflows/db.yml");
  EXPECT_EQ(db.name, "db.yml");  // the file could not be read: its name is unknown
  const std::string db_text = joined(db.messages);
  EXPECT_NE(db_text.find(".github/workflows/db.yml:5:"), std::string::npos) << db_text;
  EXPECT_NE(db_text.find("services"), std::string::npos) << db_text;
  const BrokenWorkflow& fuzz = prepared->broken[1];
  EXPECT_EQ(fuzz.file, ".github/workflows/fuzz.yml");
  EXPECT_EQ(fuzz.name, "fuzz");
  const std::string fuzz_text = joined(fuzz.messages);
  EXPECT_NE(fuzz_text.find(".github/workflows/fuzz.yml:"), std::string::npos) << fuzz_text;
  EXPECT_NE(fuzz_text.find("actions source"), std::string::npos) << fuzz_text;
}

TEST_F(PrepareRunTest, WhenEveryTriggeredWorkflowIsBrokenTheRunFailsWithAllMessages) {
  add("db.yml", kServices);
  add("fuzz.yml", kRemoteCall);
  auto prepared = prepare_run(source(), RunTrigger{});
  ASSERT_FALSE(prepared);
  EXPECT_EQ(prepared.error().kind, PrepareError::Kind::invalid);
  const std::string text = joined(prepared.error().messages);
  EXPECT_NE(text.find(".github/workflows/db.yml:5:"), std::string::npos) << text;
  EXPECT_NE(text.find(".github/workflows/fuzz.yml:"), std::string::npos) << text;
}

TEST_F(PrepareRunTest, AJobSelectionLeavesBrokenWorkflowsOutAndNotesThem) {
  add("ci.yml", kGood);
  add("db.yml", kServices);
  auto prepared = prepare_run(source(), RunTrigger{}, RunSelection{{"build"}, {}});
  ASSERT_TRUE(prepared) << joined(prepared.error().messages);
  EXPECT_EQ(prepared->workflows.size(), 1u);
  EXPECT_TRUE(prepared->broken.empty());
  EXPECT_NE(joined(prepared->notes).find(".github/workflows/db.yml:5:"), std::string::npos)
      << joined(prepared->notes);
  auto missing = prepare_run(source(), RunTrigger{}, RunSelection{{"deploy"}, {}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, PrepareError::Kind::selection);
  EXPECT_NE(joined(missing.error().messages).find("db.yml"), std::string::npos);
}

// ---- execute_run over a scripted backend ----------------------------------------

// Counts the sandboxes alive at once; every exec waits (bounded) until `wanted`
// of them have been alive at the same time, so with `wanted` 2 a job succeeds
// only if another job's sandbox came up while its own was there.
class CountingBackend final : public sandbox::SandboxBackend {
 public:
  explicit CountingBackend(int wanted) : wanted_(wanted) {}

  std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> create(
      const sandbox::SandboxSpec&) override {
    std::lock_guard lock(mutex_);
    most_ = std::max(most_, ++alive_);
    changed_.notify_all();
    return std::make_unique<Box>(*this, "box-" + std::to_string(++created_));
  }

  int most() {
    std::lock_guard lock(mutex_);
    return most_;
  }

 private:
  class Box final : public sandbox::Sandbox {
   public:
    Box(CountingBackend& backend, std::string id) : backend_(backend), id_(std::move(id)) {}
    ~Box() override {
      std::lock_guard lock(backend_.mutex_);
      --backend_.alive_;
      backend_.changed_.notify_all();
    }
    const std::string& id() const override { return id_; }
    sandbox::ExitStatus exec(const sandbox::ExecRequest& request, const sandbox::LineCallback& on_line) override {
      sandbox::ExecIo io;
      return exec(request, on_line, io);
    }
    sandbox::ExitStatus exec(const sandbox::ExecRequest&, const sandbox::LineCallback&,
                             sandbox::ExecIo& io) override {
      io.captured.assign(io.capture_count, "");
      std::unique_lock lock(backend_.mutex_);
      // A safety bound, not a timing assertion: a run that never has enough
      // sandboxes at once fails its job instead of hanging the test.
      if (!backend_.changed_.wait_for(lock, 60s, [&] { return backend_.most_ >= backend_.wanted_; }))
        return {sandbox::ExitKind::kExited, 1, 0, "not enough sandboxes at once"};
      return {};
    }
    std::expected<void, sandbox::SandboxError> write_file(const std::string&, const std::string&, int) override {
      return {};
    }
    std::expected<std::string, sandbox::SandboxError> read_file(const std::string&, std::uint64_t) override {
      return std::string();
    }
    std::expected<void, sandbox::SandboxError> copy_out(const std::vector<std::string>&,
                                                        const std::string&) override {
      return {};
    }
    std::expected<void, sandbox::SandboxError> copy_in(const std::string&, const std::string&) override {
      return {};
    }
    void kill() override {}

   private:
    CountingBackend& backend_;
    std::string id_;
  };

  const int wanted_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int alive_ = 0, most_ = 0, created_ = 0;
};

// Job events of every workflow, in the order they happened.
class Timeline final : public scheduler::RunObserver {
 public:
  void on_event(const scheduler::RunEvent& event) override {
    if (event.kind != scheduler::EventKind::job_started && event.kind != scheduler::EventKind::job_finished) return;
    std::lock_guard lock(mutex_);
    events_.push_back(std::string(scheduler::to_string(event.kind)) + " " + event.name + " " +
                      (event.result ? std::string(scheduler::to_string(*event.result)) : ""));
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};

class ExecuteRunTest : public PrepareRunTest {
 protected:
  // Two workflows of one job each, both triggered by a push.
  void SetUp() override {
    for (const char* name : {"lint", "test"})
      add(std::string(name) + ".yml", std::string("on: push\njobs:\n  ") + name +
                                          ":\n    runs-on: ubuntu-latest\n    steps:\n      - run: make " + name + "\n");
    fs::create_directories(rootfs_.path() / "etc");
  }

  RunResult run(CountingBackend& backend, std::size_t capacity, Timeline& timeline,
                std::vector<std::string>& finished) {
    auto prepared = prepare_run(source(), RunTrigger{});
    EXPECT_TRUE(prepared);
    if (!prepared) return RunResult::failure;
    EXPECT_EQ(prepared->workflows.size(), 2u);
    RunEnvironment env;
    env.backend = &backend;
    env.images = [this](std::string_view name) -> std::expected<sandbox::ImageInfo, sandbox::ImageError> {
      sandbox::ImageInfo info;
      info.name = std::string(name);
      info.rootfs = rootfs_.path();
      return info;
    };
    env.masker = &masker_;
    env.capacity = capacity;
    env.run_dir = state_.path() / "run";
    env.logs_dir = state_.path() / "logs";
    env.node_cache_dir = state_.path() / "node";
    env.workflow_logs_dir = [this](const PlannedWorkflow& w) { return state_.path() / "logs" / w.file; };
    std::mutex mutex;
    WorkflowHooks hooks;
    hooks.started = [&timeline](const PlannedWorkflow&) -> scheduler::RunObserver* { return &timeline; };
    hooks.finished = [&](const PlannedWorkflow& w, const scheduler::RunReport& report) {
      std::lock_guard lock(mutex);
      finished.push_back(w.file + " " + std::string(scheduler::to_string(report.result)));
    };
    std::atomic<bool> cancel{false};
    return execute_run(*prepared, source(), RunTrigger{}, env, cancel, hooks);
  }

  TempDir rootfs_{"sandci-run-engine-"}, state_{"sandci-run-engine-"};
  SecretMasker masker_;
};

TEST_F(ExecuteRunTest, WorkflowsRunSideBySide) {
  CountingBackend backend(2);  // each job waits until both have a sandbox
  Timeline timeline;
  std::vector<std::string> finished;
  EXPECT_EQ(run(backend, 2, timeline, finished), RunResult::success);
  EXPECT_EQ(backend.most(), 2);
  const auto events = timeline.events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].rfind("job_started", 0), 0u) << events[0];
  EXPECT_EQ(events[1].rfind("job_started", 0), 0u) << events[1];
  std::sort(finished.begin(), finished.end());
  EXPECT_EQ(finished, (std::vector<std::string>{".github/workflows/lint.yml success",
                                                ".github/workflows/test.yml success"}));
}

TEST_F(ExecuteRunTest, TheWorkflowsShareTheRunsCapacity) {
  CountingBackend backend(1);
  Timeline timeline;
  std::vector<std::string> finished;
  EXPECT_EQ(run(backend, 1, timeline, finished), RunResult::success);
  EXPECT_EQ(backend.most(), 1);  // one sandbox at a time, though each workflow could start one
  EXPECT_EQ(finished.size(), 2u);
}

}  // namespace
}  // namespace sandci::agent
