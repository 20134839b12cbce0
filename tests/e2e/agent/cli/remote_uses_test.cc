// `sandci run` with what lives in other repositories: a composite action and a
// reusable workflow from `owner/repo@ref`, fetched by sandci (never by the job)
// from an actions source that is a folder of repositories, as an agent without
// internet would hold them.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

void tag(const fs::path& repo, const std::string& name) {
  auto r = run_command({"git", "-C", repo.string(), "tag", name}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST(RemoteUsesTest, RemoteActionAndReusableWorkflowComeFromTheActionsSource) {
  StateDir state;
  ASSERT_TRUE(state.has_images()) << "test images missing: run scripts/test-setup.sh";
  TempDir source, repo;
  // acme/ci-kit: a composite action at its root and a reusable workflow, tagged v1.
  make_repo(source.path() / "acme" / "ci-kit", {
      {"action.yml", R"Y(
name: Announce
description: Prints a banner and gives back what it printed
inputs:
  title:
    description: What to announce
    required: true
outputs:
  banner:
    description: The banner line
    value: ${{ steps.make.outputs.banner }}
runs:
  using: composite
  steps:
    - id: make
      shell: bash
      run: |
        banner="== ${{ inputs.title }} =="
        echo "$banner"
        echo "banner=$banner" >> "$GITHUB_OUTPUT"
)Y"},
      {".github/workflows/lint.yml", R"Y(
name: shared lint
on:
  workflow_call:
    inputs:
      strict:
        type: boolean
        default: false
    outputs:
      verdict:
        value: ${{ jobs.check.outputs.verdict }}
jobs:
  check:
    runs-on: ubuntu-latest
    outputs:
      verdict: ${{ steps.v.outputs.verdict }}
    steps:
      - id: v
        run: |
          echo "strict mode: ${{ inputs.strict }}"
          echo "verdict=clean" >> "$GITHUB_OUTPUT"
)Y"},
  });
  tag(source.path() / "acme" / "ci-kit", "v1");

  make_repo(repo.path(), {{".github/workflows/ci.yml", R"Y(
name: ci
on: push
jobs:
  announce:
    runs-on: ubuntu-latest
    steps:
      - id: a
        uses: acme/ci-kit@v1
        with:
          title: release candidate
      - run: echo "action said '${{ steps.a.outputs.banner }}'"
  lint:
    uses: acme/ci-kit/.github/workflows/lint.yml@v1
    with:
      strict: true
  summary:
    needs: lint
    runs-on: ubuntu-latest
    steps:
      - run: echo "lint verdict ${{ needs.lint.outputs.verdict }}"
)Y"}});

  auto r = run_command({SANDCI_BINARY, "run", repo.path().string(), "--plain", "--state-dir", state.path().string(),
                        "--actions-source", source.path().string()},
                       300s);
  EXPECT_FALSE(r.timed_out) << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("action said '== release candidate =='"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("strict mode: true"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lint verdict clean"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lint / check"), std::string::npos) << r.output;
  // Which commit each ref ran at is said after the run.
  EXPECT_NE(r.output.find("acme/ci-kit@v1: commit"), std::string::npos) << r.output;
}

TEST(RemoteUsesTest, AnUnreachableSourceNamesTheCommandThatFillsTheCache) {
  StateDir state;
  ASSERT_TRUE(state.has_images()) << "test images missing: run scripts/test-setup.sh";
  TempDir empty, repo;
  make_repo(repo.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  lint:
    uses: acme/ci-kit/.github/workflows/lint.yml@v1
)Y"}});
  auto r = run_command({SANDCI_BINARY, "run", repo.path().string(), "--plain", "--state-dir", state.path().string(),
                        "--actions-source", empty.path().string()},
                       120s);
  EXPECT_FALSE(r.timed_out) << r.output;
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("acme/ci-kit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sandci actions add"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
