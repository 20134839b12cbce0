// `sandci run` of repositories as real projects have them: a workflow that cannot
// run fails on its own while the others run, jobs for a machine of another
// architecture are skipped, and --matrix filters matrices grown at run time.
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class WorkflowsApartTest : public SandciRunTest {};

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(WorkflowsApartTest, ABrokenWorkflowFailsAloneAndTheOthersRun) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "build-ran"
)Y"},
                           {".github/workflows/integration.yml", R"Y(
name: Integration
on:
  push:
    branches: [main]
jobs:
  database:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: postgres:16
        ports: ["5432:5432"]
    steps:
      - run: echo "database-ran"
)Y"}});
  auto r = run();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[build] build-ran"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("database-ran"), std::string::npos) << r.output;
  // Named with its error before the run and again at the end.
  EXPECT_NE(r.output.find(".github/workflows/integration.yml:9:5: error:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("workflow integration.yml (.github/workflows/integration.yml) failed: "
                          ".github/workflows/integration.yml:9:5"),
            std::string::npos)
      << r.output;
  // validate stays strict about it.
  auto v = run_command({SANDCI_BINARY, "validate", repo_.path().string()}, 60s);
  EXPECT_EQ(v.exit_code, 2) << v.output;
  EXPECT_NE(v.output.find("integration.yml:9:5"), std::string::npos) << v.output;
}

// The label of an architecture this host is not, as GitHub's arm runners are named.
std::string foreign_label() {
  utsname name{};
  uname(&name);
  return std::string(name.machine) == "aarch64" ? "ubuntu-24.04-x64" : "ubuntu-24.04-arm";
}

TEST_F(WorkflowsApartTest, JobsForAnotherArchitectureAreSkippedUnlessTheLabelIsMapped) {
  const std::string label = foreign_label();
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  native:
    runs-on: ubuntu-latest
    steps:
      - run: echo "native-ran"
  other-arch:
    runs-on: )Y" + label + R"Y(
    steps:
      - run: echo "other-arch-ran"
)Y"}});
  utsname name{};
  uname(&name);
  auto r = run();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[native] native-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no runner for label '" + label + "' (this agent runs " + name.machine + ")"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("other-arch-ran"), std::string::npos) << r.output;

  auto mapped = run({"--label", label + "=debian:12"});
  EXPECT_EQ(mapped.exit_code, 0) << mapped.output;
  EXPECT_NE(mapped.output.find("[other-arch] other-arch-ran"), std::string::npos) << mapped.output;

  auto v = run_command({SANDCI_BINARY, "validate", repo_.path().string()}, 60s);
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("note: job 'other-arch': runs-on '" + label + "'"), std::string::npos) << v.output;
  EXPECT_NE(v.output.find("1 note"), std::string::npos) << v.output;
}

TEST_F(WorkflowsApartTest, MatrixFiltersApplyToMatricesGrownAtRunTime) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  targets:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.pick.outputs.list }}
    steps:
      - id: pick
        run: echo 'list={"target":["armhf","riscv","x86"],"opt":["O2"]}' >> "$GITHUB_OUTPUT"
  cross:
    needs: targets
    strategy:
      matrix: ${{ fromJSON(needs.targets.outputs.list) }}
    runs-on: ubuntu-latest
    steps:
      - run: echo "cross-${{ matrix.target }} (${{ strategy.job-index }}/${{ strategy.job-total }})"
)Y"}});
  auto r = run({"--matrix", "target=riscv"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[cross (O2, riscv)] cross-riscv (0/1)"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("cross-armhf"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("cross-x86"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("armhf)"), std::string::npos) << r.output;
  EXPECT_EQ(count(r.output, "matrix filter target=riscv: 1 of 3 combinations run, 2 left out"), 1u) << r.output;

  auto none = run({"--matrix", "target=mips"});
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_NE(none.output.find("matrix filter target=mips matches none of the 3 combinations of job 'cross'"),
            std::string::npos)
      << none.output;
}

}  // namespace
}  // namespace sandci::e2e
