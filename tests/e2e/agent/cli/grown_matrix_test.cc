// `sandci run` with a matrix computed from a needed job's outputs: the run grows
// by one job per combination once that job is done, each runs in its own real
// gVisor sandbox, and the job after the matrix waits for all of them.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class GrownMatrixRunTest : public SandciRunTest {};

// Where `needle` first appears in the output; npos when it does not.
std::size_t at(const std::string& output, const std::string& needle) { return output.find(needle); }

TEST_F(GrownMatrixRunTest, EachCombinationRunsAndTheNextJobWaitsForAll) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
name: ci
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix={"os":["a","b"],"include":[{"os":"c","extra":1}]}' >> "$GITHUB_OUTPUT"
  test:
    needs: setup
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    runs-on: ubuntu-latest
    outputs:
      last: ${{ steps.say.outputs.os }}
    steps:
      - id: say
        run: |
          echo "testing on ${{ matrix.os }} extra=${{ matrix.extra }} (${{ strategy.job-index }}/${{ strategy.job-total }})"
          echo "os=${{ matrix.os }}" >> "$GITHUB_OUTPUT"
  report:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo "report after ${{ needs.test.result }} last=${{ needs.test.outputs.last }}"
)Y"}});
  auto r = run();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& out = r.output;
  EXPECT_NE(at(out, "[test (a)] testing on a extra= (0/3)"), std::string::npos) << out;
  EXPECT_NE(at(out, "[test (b)] testing on b extra= (1/3)"), std::string::npos) << out;
  EXPECT_NE(at(out, "[test (c, 1)] testing on c extra=1 (2/3)"), std::string::npos) << out;
  const std::size_t report = at(out, "[report] report after success last=c");
  ASSERT_NE(report, std::string::npos) << out;
  for (const std::string job : {"test (a)", "test (b)", "test (c, 1)"}) {
    const std::size_t done = at(out, "[" + job + "] success");
    ASSERT_NE(done, std::string::npos) << job << "\n" << out;
    EXPECT_LT(done, report) << job << "\n" << out;
  }
  // The summary lists every instance below the placeholder.
  const std::size_t summary = out.rfind("test (matrix)");
  ASSERT_NE(summary, std::string::npos) << out;
  EXPECT_LT(summary, out.rfind("test (a)")) << out;
  EXPECT_LT(out.rfind("test (c, 1)"), out.rfind("report")) << out;
}

TEST_F(GrownMatrixRunTest, AnEmptyMatrixFailsTheRunNamingTheJob) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      targets: ${{ steps.t.outputs.targets }}
    steps:
      - id: t
        run: echo 'targets=[]' >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    strategy:
      matrix:
        target: ${{ fromJSON(needs.setup.outputs.targets) }}
    runs-on: ubuntu-latest
    steps:
      - run: echo "building ${{ matrix.target }}"
)Y"}});
  auto r = run();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(at(r.output, "[build (matrix)] failure"), std::string::npos) << r.output;
  EXPECT_NE(at(r.output, "the matrix of job 'build' cannot be computed: matrix dimension 'target' must not be empty"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(at(r.output, "building"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
