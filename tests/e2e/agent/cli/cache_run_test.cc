// `sandci run` twice with actions/cache: the second run's steps see what the
// first one cached, through the real binary and real gVisor sandboxes.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class CacheRunTest : public SandciRunTest {};

TEST_F(CacheRunTest, TheSecondRunRestoresWhatTheFirstCached) {
  make_repo(repo_.path(), {{".github/workflows/build.yml", R"Y(
name: build
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Cache the toolchain
        id: toolchain
        uses: actions/cache@v4
        with:
          path: .toolchain
          key: toolchain-${{ hashFiles('toolchain.txt') }}
      - name: Fetch the toolchain
        if: steps.toolchain.outputs.cache-hit != 'true'
        run: mkdir -p .toolchain && echo "compiler $(cat toolchain.txt)" > .toolchain/cc && echo downloaded
      - run: echo "toolchain says [$(cat .toolchain/cc)] hit=${{ steps.toolchain.outputs.cache-hit }}"
)Y"},
                           {"toolchain.txt", "12.2"}});
  auto first = run();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("downloaded"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("toolchain says [compiler 12.2] hit=false"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("Cache saved with key: toolchain-"), std::string::npos) << first.output;
  EXPECT_TRUE(fs::exists(state_.path() / "cache"));

  auto second = run();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(second.output.find("downloaded"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("toolchain says [compiler 12.2] hit=true"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("Cache restored from key: toolchain-"), std::string::npos) << second.output;
}

TEST_F(CacheRunTest, HomeFoldersAreSavedAndRestoredAcrossRuns) {
  make_repo(repo_.path(), {{".github/workflows/deps.yml", R"Y(
on: push
jobs:
  deps:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/cache@v4
        id: deps
        with:
          path: |
            ~/.cache/thing
            /home/runner/.cargo/registry
          key: deps-v1
      - name: Download
        if: steps.deps.outputs.cache-hit != 'true'
        run: |
          mkdir -p ~/.cache/thing /home/runner/.cargo/registry
          echo wheel-1.0 > ~/.cache/thing/pkg && echo crate-2.1 > /home/runner/.cargo/registry/index
          echo fetched
      - run: echo "have [$(cat ~/.cache/thing/pkg) $(cat /home/runner/.cargo/registry/index)]"
)Y"}});
  auto first = run();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("fetched"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("Cache saved with key: deps-v1 (2 files"), std::string::npos) << first.output;

  auto second = run();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(second.output.find("fetched"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("Cache restored from key: deps-v1"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find("have [wheel-1.0 crate-2.1]"), std::string::npos) << second.output;
}

TEST_F(CacheRunTest, CheckoutOfAnotherRepositoryComesFromASiblingFolder) {
  TempDir parent;
  const fs::path app = parent.path() / "app", lib = parent.path() / "shared-lib";
  make_repo(lib, {{"VERSION", "lib 3.1"}});
  make_repo(app, {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          repository: example/shared-lib
          path: third_party/lib
      - run: echo "vendored [$(cat third_party/lib/VERSION)]"
)Y"}});
  auto r = run_command({SANDCI_BINARY, "run", app.string(), "--plain", "--state-dir", state_.path().string()}, 300s);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("vendored [lib 3.1]"), std::string::npos) << r.output;

  fs::remove_all(lib);
  r = run_command({SANDCI_BINARY, "run", app.string(), "--plain", "--state-dir", state_.path().string()}, 300s);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--repository-base"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
