// The runner context's folders through `sandci run`: an out-of-tree build in
// ${{ runner.workspace }} as CMake projects write it, and the other runner paths.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

class RunnerPathsTest : public SandciRunTest {};

TEST_F(RunnerPathsTest, AnOutOfTreeBuildInTheRunnerWorkspaceWorks) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(
name: ci
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Configure
        run: mkdir ${{ runner.workspace }}/build && cd ${{ runner.workspace }}/build && echo "source=${{ github.workspace }}" > config.txt
      - name: Build
        working-directory: ${{ runner.workspace }}/build
        shell: sh
        run: |
          cp "$GITHUB_WORKSPACE/main.c" . && echo built > app.out
          echo "configured [$(cat config.txt)] built [$(cat app.out)] in [$(pwd)]"
      - name: Paths
        run: |
          echo "env workspace [$RUNNER_WORKSPACE] context [${{ runner.workspace }}]"
          echo "temp [$RUNNER_TEMP|${{ runner.temp }}] tools [$RUNNER_TOOL_CACHE|${{ runner.tool_cache }}]"
          echo "os [${{ runner.os }}] arch [${{ runner.arch }}] name [${{ runner.name }}]"
          mkdir "$RUNNER_TOOL_CACHE/cmake" && touch "$RUNNER_TEMP/scratch" && echo writable
)Y"},
                           {"main.c", "int main(void) { return 0; }\n"}});
  auto r = run();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("configured [source=/workspace] built [built] in [/home/runner/work/build]"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("env workspace [/home/runner/work] context [/home/runner/work]"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("temp [/tmp/runner|/tmp/runner] tools [/opt/hostedtoolcache|/opt/hostedtoolcache]"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("os [Linux] arch [X64] name [sandci]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("writable"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
