// Runs the real `sandci plan` on repositories written into a temporary folder
// and checks what it prints and its exit code.
#include <gtest/gtest.h>

#include "support/cli_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

// A repository folder with .github/workflows/ in it.
class TempRepo {
 public:
  TempRepo() { fs::create_directories(dir_.path() / ".github" / "workflows"); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_.path() / ".github" / "workflows" / name) << text;
  }
  const fs::path& path() const { return dir_.path(); }

 private:
  sandci::testing::CliTempDir dir_{"sandci-cli-plan-"};
};

using sandci::testing::CliOutput;

// Runs `sandci plan <args>` in `cwd`, capturing stdout and stderr apart.
CliOutput plan(const std::string& args, const fs::path& cwd) {
  return sandci::testing::run_sandci("plan", args, cwd);
}

const char* kCi = R"(name: CI
on:
  push:
    branches: [main]
  pull_request:
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, mac]
    steps:
      - run: make
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: make test
  deploy:
    needs: [test, lint]
    runs-on: ubuntu-latest
    steps:
      - run: make deploy
)";

const char* kDocs = R"(name: Docs
on: pull_request
jobs:
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: make docs
)";

class CliPlan : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.write("ci.yml", kCi);
    repo_.write("docs.yml", kDocs);
  }
  TempRepo repo_;
};

TEST_F(CliPlan, TextShowsTriggeredWorkflowsLevelsAndCriticalPath) {
  auto r = plan("", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("event: push refs/heads/main\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CI (.github/workflows/ci.yml): runs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  level 0: build (linux), build (mac), lint\n"
                       "  level 1: test\n"
                       "  level 2: deploy\n"
                       "  critical path: build (linux) -> test -> deploy (3 jobs)\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Docs (.github/workflows/docs.yml): does not run"), std::string::npos)
      << r.out;
}

TEST_F(CliPlan, EventAndRefSelectTheWorkflows) {
  auto push_other = plan(". --ref refs/heads/feature", repo_.path());
  ASSERT_EQ(push_other.exit_code, 0) << push_other.err;
  EXPECT_NE(push_other.out.find("CI (.github/workflows/ci.yml): does not run"), std::string::npos)
      << push_other.out;
  EXPECT_EQ(push_other.out.find("level 0"), std::string::npos) << push_other.out;

  auto pr = plan(". --event pull_request --ref main", repo_.path());
  ASSERT_EQ(pr.exit_code, 0) << pr.err;
  EXPECT_NE(pr.out.find("CI (.github/workflows/ci.yml): runs"), std::string::npos) << pr.out;
  EXPECT_NE(pr.out.find("Docs (.github/workflows/docs.yml): runs"), std::string::npos) << pr.out;
  EXPECT_NE(pr.out.find("  level 0: docs\n"), std::string::npos) << pr.out;
}

TEST_F(CliPlan, JsonCarriesJobsLevelsAndCriticalPath) {
  auto r = plan("--format json", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["event"]["name"], "push");
  ASSERT_EQ(doc["workflows"].size(), 2u);
  const auto& ci = doc["workflows"][0];
  EXPECT_EQ(ci["name"], "CI");
  EXPECT_EQ(ci["runs"], true);
  EXPECT_EQ(ci["plan"]["critical_path"],
            (nlohmann::json{"build (linux)", "test", "deploy"}));
  EXPECT_EQ(ci["plan"]["levels"][0], (nlohmann::json{"build (linux)", "build (mac)", "lint"}));
  EXPECT_EQ(ci["plan"]["jobs"][0]["matrix"], (nlohmann::json{{"os", "linux"}}));
  EXPECT_EQ(ci["plan"]["jobs"][3]["needs"], (nlohmann::json{"build (linux)", "build (mac)"}));
  EXPECT_EQ(doc["workflows"][1]["runs"], false);
  EXPECT_FALSE(doc["workflows"][1].contains("plan"));
}

TEST_F(CliPlan, DotDrawsTheGraph) {
  auto r = plan("--format dot", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("digraph sandci {")) << r.out;
  EXPECT_NE(r.out.find("w0j3 [label=\"test\", style=bold];"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w0j0 -> w0j3 [style=bold];"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w0j1 -> w0j3;"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("docs"), std::string::npos) << r.out;  // it does not run on push
}

TEST_F(CliPlan, OneWorkflowFileCanBeGiven) {
  auto r = plan(".github/workflows/docs.yml --event pull_request", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Docs (.github/workflows/docs.yml): runs"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("CI"), std::string::npos) << r.out;
}

TEST_F(CliPlan, ValidationErrorsExitTwoWithLocations) {
  repo_.write("ci.yml", R"(on: push
jobs:
  a:
    needs: b
    runs-on: ubuntu-latest
    steps:
      - run: a
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: b
)");
  auto r = plan("", repo_.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("ci.yml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": error: "), std::string::npos) << r.err;
}

TEST_F(CliPlan, MatrixTooLargeExitsTwo) {
  std::string values;
  for (int i = 0; i < 20; ++i) values += (i ? ", " : "") + std::to_string(i);
  repo_.write("ci.yml", "on: push\njobs:\n  big:\n    runs-on: ubuntu-latest\n    strategy:\n"
                        "      matrix:\n        x: [" + values + "]\n        y: [" + values +
                        "]\n    steps:\n      - run: x\n");
  auto r = plan("", repo_.path());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("ci.yml"), std::string::npos) << r.err;
}

// Scheduled workflows show the next three times of each cron line, counted from
// --now (UTC), across a year's end.
TEST_F(CliPlan, ScheduleShowsTheNextThreeFireTimes) {
  repo_.write("nightly.yml", R"(name: Nightly
on:
  schedule:
    - cron: '30 4 * * MON-FRI'
    - cron: '0 0 1 * *'
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: make nightly
)");
  auto r = plan("--event schedule --now 2024-12-31T10:00Z", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("event: schedule refs/heads/main\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Nightly (.github/workflows/nightly.yml): runs - schedule\n"
                       "  schedule '30 4 * * MON-FRI': next 2025-01-01 04:30 UTC, 2025-01-02 04:30 UTC, "
                       "2025-01-03 04:30 UTC\n"
                       "  schedule '0 0 1 * *': next 2025-01-01 00:00 UTC, 2025-02-01 00:00 UTC, "
                       "2025-03-01 00:00 UTC\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("CI (.github/workflows/ci.yml): does not run - the workflow does not run on schedule"),
            std::string::npos)
      << r.out;
  auto json_out = plan("--event push --format json --now 2024-02-28T23:59Z", repo_.path());
  ASSERT_EQ(json_out.exit_code, 0) << json_out.err;
  auto parsed = nlohmann::json::parse(json_out.out);
  bool found = false;
  for (const auto& w : parsed["workflows"]) {
    if (w["name"] != "Nightly") continue;
    found = true;
    EXPECT_EQ(w["runs"], false);
    EXPECT_EQ(w["schedules"][1]["next"],
              nlohmann::json({"2024-03-01 00:00 UTC", "2024-04-01 00:00 UTC", "2024-05-01 00:00 UTC"}));
  }
  EXPECT_TRUE(found) << json_out.out;
  auto bad = plan("--now yesterday", repo_.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--now: 'yesterday' is not a UTC time"), std::string::npos) << bad.err;
}

TEST_F(CliPlan, PullRequestTargetPlansLikePullRequest) {
  repo_.write("triage.yml", "name: Triage\non:\n  pull_request_target:\n    branches: [main]\njobs:\n"
                            "  label:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo label\n");
  auto r = plan("--event pull_request_target --ref main", repo_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Triage (.github/workflows/triage.yml): runs - pull_request_target opened against 'main'"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Docs (.github/workflows/docs.yml): does not run"), std::string::npos) << r.out;
}

TEST_F(CliPlan, BadOptionsAreUsageErrors) {
  EXPECT_EQ(plan("--format xml", repo_.path()).exit_code, 2);
  EXPECT_EQ(plan("--event release", repo_.path()).exit_code, 2);
  EXPECT_EQ(plan("no/such/folder", repo_.path()).exit_code, 2);
}

TEST(CliPlanEmpty, FolderWithoutWorkflowsExitsTwo) {
  TempRepo repo;
  auto r = plan("", repo.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no workflow files"), std::string::npos) << r.err;
}

}  // namespace
