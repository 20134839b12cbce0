// GET /readyz's checks over a real SQLite store and a real folder.
#include "agent/server/readiness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/store/run_store.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;

class ReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::open_sqlite_store(dir_ / "agent.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    options_.state_dir = dir_;
    options_.min_free_bytes = 1;
    options_.probe_runsc = [this]() -> std::optional<std::string> {
      ++runsc_probes_;
      return runsc_problem_;
    };
  }
  void TearDown() override {
    store_.reset();
  }

  static const ReadinessCheck& named(const std::vector<ReadinessCheck>& checks, const std::string& name) {
    for (const auto& c : checks)
      if (c.name == name) return c;
    throw std::runtime_error("no check " + name);
  }

  TempDir temp_{"sandci-readiness-"};
  fs::path dir_ = temp_.path();
  std::unique_ptr<store::RunStore> store_;
  ReadinessOptions options_;
  int runsc_probes_ = 0;
  std::optional<std::string> runsc_problem_;
};

TEST_F(ReadinessTest, EveryCheckPassesOnAWorkingAgentAndLeavesNoProbeFileBehind) {
  Readiness readiness(*store_, options_);
  auto checks = readiness.check();
  ASSERT_EQ(checks.size(), 3u);
  for (const auto& c : checks) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
  EXPECT_FALSE(fs::exists(dir_ / ".readyz-probe"));
}

TEST_F(ReadinessTest, DiskBelowItsLimitIsNotReadyAndSaysHowMuchIsFree) {
  options_.min_free_bytes = std::uint64_t(1) << 62;  // more than any disk here
  Readiness readiness(*store_, options_);
  const auto disk = named(readiness.check(), "disk");
  EXPECT_FALSE(disk.ok);
  EXPECT_NE(disk.detail.find("GiB free in " + dir_.string()), std::string::npos) << disk.detail;
}

TEST_F(ReadinessTest, AStateFolderThatTakesNoWriteIsNotReady) {
  options_.state_dir = dir_ / "gone";  // the folder was removed under the agent
  Readiness readiness(*store_, options_);
  const auto checks = readiness.check();
  EXPECT_FALSE(named(checks, "store").ok);
  EXPECT_NE(named(checks, "store").detail.find("cannot create"), std::string::npos);
  EXPECT_FALSE(named(checks, "disk").ok);
}

TEST_F(ReadinessTest, RunscIsProbedAtMostOncePerIntervalAndItsErrorShown) {
  runsc_problem_ = "runsc: not found";
  Readiness readiness(*store_, options_);
  EXPECT_FALSE(named(readiness.check(), "runsc").ok);
  EXPECT_EQ(named(readiness.check(), "runsc").detail, "runsc: not found");
  EXPECT_EQ(runsc_probes_, 1);
  options_.runsc_probe_interval = std::chrono::seconds(0);
  Readiness eager(*store_, options_);
  runsc_problem_.reset();
  EXPECT_TRUE(named(eager.check(), "runsc").ok);
  EXPECT_TRUE(named(eager.check(), "runsc").ok);
  EXPECT_EQ(runsc_probes_, 3);
}

TEST(ProbeRunscBinary, AMissingBinaryIsAnError) {
  EXPECT_TRUE(probe_runsc_binary("/nonexistent/runsc").has_value());
  EXPECT_TRUE(probe_runsc_binary("false").has_value());
}

}  // namespace
}  // namespace sandci::agent::server
