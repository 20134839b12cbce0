// The runner image (`sandci image build-default --preset runner`): a workflow
// written for GitHub's ubuntu-latest finds its tools there, with no label
// configured, and sudo works for the job's user. The real binary, real sandboxes.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class RunnerImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.has_images()) << "runner image missing: run scripts/test-setup.sh (make test does)";
  }

  Result run() {
    auto r = run_command({SANDCI_BINARY, "run", repo_.path().string(), "--plain", "--state-dir",
                          state_.path().string()},
                         300s);
    EXPECT_FALSE(r.timed_out) << r.output;
    return r;
  }

  TempDir repo_;
  StateDir state_{runner_images_dir()};
};

// A C project built with cmake, checked with a Python script, packaged with zip and
// jq, as a real project's CI does it; `sudo` as in `sudo apt-get ...` lines.
TEST_F(RunnerImageTest, UbuntuLatestJobsFindTheirToolsAndSudo) {
  make_repo(repo_.path(), {
      {".github/workflows/build.yml", R"Y(
name: build
on: [push, pull_request]
jobs:
  build:
    runs-on: ubuntu-22.04
    steps:
      - uses: actions/checkout@v4
      - name: Configure
        run: cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
      - name: Build
        run: cmake --build build
      - name: Test
        run: python3 scripts/check.py ./build/greet
      - name: Package
        run: |
          zip -j greet.zip build/greet
          unzip -l greet.zip | grep -q greet
          jq -n --arg v "$(./build/greet)" '{output: $v}' | jq -r .output
      - name: Privileged step
        run: |
          sudo -n true
          echo "sudo user: $(sudo whoami)"
          node -e 'console.log("node", process.version.split(".")[0])'
)Y"},
      {"CMakeLists.txt", "cmake_minimum_required(VERSION 3.16)\nproject(greet C)\nadd_executable(greet main.c)\n"},
      {"main.c", "#include <stdio.h>\nint main(void) { puts(\"hello from greet\"); return 0; }\n"},
      {"scripts/check.py", "import subprocess, sys\n"
                           "out = subprocess.run([sys.argv[1]], capture_output=True, text=True).stdout\n"
                           "assert out.strip() == 'hello from greet', out\n"
                           "print('check passed')\n"},
  });
  auto r = run();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("image sandci-runner:12"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("check passed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hello from greet"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sudo user: root"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("node v"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("unable to resolve host"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
