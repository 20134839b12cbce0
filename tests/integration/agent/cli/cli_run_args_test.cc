// `sandci run` typed the way people type it: options before or after the folder,
// unknown commands, and the run folders it keeps. The state dir has no images, so
// every job ends at once with "not in the image store": these tests check what the
// command line chose (folder, jobs, matrix, inputs, labels) without starting a sandbox.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "support/cli_support.h"

namespace sandci::testing {
namespace {

const char* kWorkflow = R"(name: ci
on: [push, workflow_dispatch]
permissions: read-all
jobs:
  build:
    runs-on: linux
    strategy:
      matrix:
        os: [alpha, beta, gamma]
    steps:
      - run: echo build
  test:
    runs-on: linux
    steps:
      - run: echo "input ${{ inputs.greeting }}"
  lint:
    runs-on: linux
    steps:
      - run: echo lint
)";

class RunArgs : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(repo() / ".sandci/workflows");
    std::ofstream(repo() / ".sandci/workflows/ci.yml") << kWorkflow;
    std::ofstream(dir_.path() / "secrets.env") << "TOKEN=abc123\n";
    const std::string git = "git -C " + shell_quote(repo().string()) + " -c user.name=t -c user.email=t@t.invalid ";
    ASSERT_EQ(std::system((git + "init -q -b main && " + git + "add -A && " + git + "commit -q -m t").c_str()), 0);
  }
  fs::path repo() const { return dir_.path() / "repo"; }
  // `sandci run ARGS` from the temp folder, with a private state dir.
  CliOutput run(const std::string& args) {
    return run_sandci("run", "--plain --state-dir " + shell_quote((dir_.path() / "state").string()) + " " + args,
                      dir_.path());
  }
  CliTempDir dir_;
};

// The folder was taken as the folder: the run reached its jobs (exit 1 because
// the empty image store fails each of them), and said how many jobs it planned.
void expect_ran(const CliOutput& r, const std::string& jobs) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("workflow ci (.sandci/workflows/ci.yml): " + jobs + ","), std::string::npos) << r.out << r.err;
}

TEST_F(RunArgs, JobBeforeAndAfterTheFolder) {
  auto r = run("--job lint repo");
  expect_ran(r, "1 job");
  EXPECT_NE(r.err.find(".sandci/workflows/ci.yml:3:1: note: 'permissions' is ignored"), std::string::npos) << r.err;
  expect_ran(run("repo --job lint"), "1 job");
  expect_ran(run("--job lint --job test repo"), "2 jobs");
}

TEST_F(RunArgs, MatrixBeforeAndAfterTheFolder) {
  expect_ran(run("--matrix os=beta --job build repo"), "1 job");
  expect_ran(run("repo --matrix os=beta --job build"), "1 job");
}

TEST_F(RunArgs, SecretBeforeAndAfterTheFolder) {
  for (const std::string args : {"--secret TOKEN=abc123 --job lint repo", "repo --secret TOKEN=abc123 --job lint"}) {
    auto r = run(args);
    expect_ran(r, "1 job");
    EXPECT_EQ(r.err.find("--secret"), std::string::npos) << r.err;
  }
}

TEST_F(RunArgs, SecretsFileBeforeAndAfterTheFolder) {
  expect_ran(run("--secrets-file secrets.env --job lint repo"), "1 job");
  expect_ran(run("repo --secrets-file secrets.env --job lint"), "1 job");
}

TEST_F(RunArgs, InputBeforeAndAfterTheFolder) {
  for (const std::string args : {"--event workflow_dispatch --input greeting=hi --job test repo",
                                 "repo --event workflow_dispatch --input greeting=hi --job test"}) {
    expect_ran(run(args), "1 job");
  }
}

TEST_F(RunArgs, LabelBeforeAndAfterTheFolder) {
  // The label maps runs-on: linux to an image the (empty) store names in its error.
  for (const std::string args : {"--label linux=mapped:1 --job lint repo", "repo --label linux=mapped:1 --job lint"}) {
    auto r = run(args);
    expect_ran(r, "1 job");
    EXPECT_NE(r.out.find("image 'mapped:1' is not in the image store"), std::string::npos) << r.out;
  }
}

TEST_F(RunArgs, EachOccurrenceTakesOneValue) {
  // Two values after one --job: the second is the folder, not a job.
  auto r = run("--job lint repo --job test");
  expect_ran(r, "2 jobs");
}

TEST_F(RunArgs, UnknownCommandIsAnErrorEvenWithHelp) {
  for (const std::string command : {"nonsense", "nonsense --help", "runn --help"}) {
    auto r = run_sandci(command, "", dir_.path());
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_NE(r.err.find("unknown command"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("Usage"), std::string::npos) << "printed help for " << command;
  }
  EXPECT_EQ(run_sandci("--help", "", dir_.path()).exit_code, 0);
  EXPECT_EQ(run_sandci("run", "--help", dir_.path()).exit_code, 0);
}

TEST_F(RunArgs, KeepsTheNewestRunFolders) {
  for (int i = 0; i < 4; ++i) {
    auto r = run("--keep-runs 2 --job lint repo");
    expect_ran(r, "1 job");
    EXPECT_NE(r.out.find("run folder: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the newest 2 are kept"), std::string::npos) << r.out;
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // run folders are named by the second
  }
  std::size_t folders = 0;
  for (const auto& entry : fs::directory_iterator(dir_.path() / "state/runs")) folders += entry.is_directory();
  EXPECT_EQ(folders, 2u);
}

// A relative --state-dir is the folder's own, as with any other path argument:
// the checkout, the logs and the run folders all land under it.
TEST_F(RunArgs, RelativeStateDirIsTakenFromTheCurrentFolder) {
  auto r = run_sandci("run", "--plain --state-dir relative-state --job lint repo", dir_.path());
  expect_ran(r, "1 job");
  EXPECT_EQ(r.err.find("checkout failed"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_directory(dir_.path() / "relative-state/runs")) << r.out << r.err;
  EXPECT_NE(r.out.find("run folder: " + (dir_.path() / "relative-state/runs").string()), std::string::npos) << r.out;
}

TEST_F(RunArgs, KeepsTwentyRunFoldersByDefault) {
  fs::create_directories(dir_.path() / "state/runs");
  for (int i = 0; i < 25; ++i) fs::create_directories(dir_.path() / "state/runs" / ("20200101-0000" + std::to_string(10 + i) + "-1"));
  auto r = run("--job lint repo");
  expect_ran(r, "1 job");
  std::size_t folders = 0;
  bool oldest_gone = !fs::exists(dir_.path() / "state/runs/20200101-000010-1");
  for (const auto& entry : fs::directory_iterator(dir_.path() / "state/runs")) folders += entry.is_directory();
  EXPECT_EQ(folders, 20u);
  EXPECT_TRUE(oldest_gone);
}

}  // namespace
}  // namespace sandci::testing
