// `sandci run` of a workflow that calls a local reusable workflow, end to end:
// the real binary, real gVisor sandboxes. Inputs from the caller's needs, a
// passed secret, the called workflow's own env and defaults, outputs back to the
// caller's dependents; and `sandci plan` / `validate` showing the called jobs.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class ReusableWorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.has_images()) << "test images missing: run scripts/test-setup.sh (make test does)";
  }
  void TearDown() override { EXPECT_EQ(state_.runsc_list(), ""); }

  Result sandci(std::vector<std::string> args) {
    std::vector<std::string> argv = {SANDCI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, 300s);
    EXPECT_FALSE(r.timed_out) << r.output;
    return r;
  }
  Result run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run", repo_.path().string(), "--plain", "--state-dir",
                                      state_.path().string(), "--logs", logs_.path().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return sandci(args);
  }

  TempDir repo_, logs_;
  StateDir state_;
};

const char* kCaller = R"Y(
name: ci
on: push
env:
  FROM: caller
jobs:
  setup:
    outputs:
      target: ${{ steps.t.outputs.target }}
    steps:
      - id: t
        run: echo "target=release" >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    uses: ./.github/workflows/build.yml
    with:
      target: ${{ needs.setup.outputs.target }}
      verbose: true
    secrets:
      token: ${{ secrets.DEPLOY_TOKEN }}
  publish:
    needs: build
    steps:
      - run: echo "publishing ${{ needs.build.outputs.artifact }} after ${{ needs.build.result }}"
)Y";

const char* kCalled = R"Y(
name: build
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      verbose: {type: boolean, default: false}
    secrets:
      token: {required: true}
    outputs:
      artifact:
        value: ${{ jobs.compile.outputs.file }}
env:
  FROM: called
defaults:
  run:
    working-directory: src
jobs:
  compile:
    outputs:
      file: ${{ steps.c.outputs.file }}
    steps:
      - id: c
        env:
          TOKEN: ${{ secrets.token }}
        run: |
          echo "compile target=${{ inputs.target }} verbose=${{ inputs.verbose }} from=$FROM in=$(basename "$PWD")"
          test "$TOKEN" = s3cret-value && echo "token reached the called job"
          test "${{ inputs.verbose }}" = true
          echo "file=app-${{ inputs.target }}.tar" >> "$GITHUB_OUTPUT"
  test:
    needs: compile
    steps:
      - run: echo "testing ${{ needs.compile.outputs.file }} secrets=${{ toJSON(secrets) != '{}' }}"
)Y";

TEST_F(ReusableWorkflowTest, LocalReusableWorkflowRunsWithInputsSecretsAndOutputs) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", kCaller},
                           {".github/workflows/build.yml", kCalled},
                           {"src/main.c", "int main(void) { return 0; }\n"}});
  auto r = run({"--secret", "DEPLOY_TOKEN=s3cret-value"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[build / compile] compile target=release verbose=true from=called in=src"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[build / compile] token reached the called job"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[build / test] testing app-release.tar secrets=true"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[publish] publishing app-release.tar after success"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("s3cret-value"), std::string::npos) << r.output;
}

TEST_F(ReusableWorkflowTest, PlanShowsCalledJobsAndJobSelectsThem) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", kCaller},
                           {".github/workflows/build.yml", kCalled},
                           {"src/main.c", "int main(void) { return 0; }\n"}});
  auto plan = sandci({"plan", repo_.path().string()});
  EXPECT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_NE(plan.output.find("build / compile"), std::string::npos) << plan.output;
  EXPECT_NE(plan.output.find("build / test"), std::string::npos) << plan.output;

  auto validate = sandci({"validate", repo_.path().string()});
  EXPECT_EQ(validate.exit_code, 0) << validate.output;

  // --job build runs the called jobs and what the caller needs, not publish.
  auto r = run({"--job", "build", "--secret", "DEPLOY_TOKEN=s3cret-value"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[build / test] testing app-release.tar"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[publish]"), std::string::npos) << r.output;
}

// A repository in the style of real projects: a matrix caller passing inputs,
// a remote call, expressions in place of env and timeout-minutes, a local action.
TEST_F(ReusableWorkflowTest, RealisticRepositoryValidatesAndPlans) {
  const std::string repo = std::string(SANDCI_FIXTURES_DIR) + "/validate/reusable";
  auto validate = sandci({"validate", repo});
  EXPECT_EQ(validate.exit_code, 0) << validate.output;
  EXPECT_NE(validate.output.find("ok: 2 workflows, 7 jobs, 5 notes"), std::string::npos) << validate.output;
  EXPECT_NE(validate.output.find("ci.yml:33:11: note: reusable workflow "
                                 "'acme/shared-workflows/.github/workflows/docs.yml@v3' was not checked"),
            std::string::npos)
      << validate.output;
  auto plan = sandci({"plan", repo});
  EXPECT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_NE(plan.output.find("level 1: build (debug) / compile, build (release) / compile"), std::string::npos)
      << plan.output;
  EXPECT_NE(plan.output.find("level 4: build\n"), std::string::npos) << plan.output;
}

TEST_F(ReusableWorkflowTest, BadCallsAreReportedAtTheirLines) {
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    with:
      targte: release
  deploy:
    uses: acme/pipes/.github/workflows/deploy.yml@v1
)Y"},
                           {".github/workflows/build.yml", kCalled}});
  auto validate = sandci({"validate", repo_.path().string()});
  EXPECT_EQ(validate.exit_code, 2) << validate.output;
  EXPECT_NE(validate.output.find("ci.yml:6:7: error: job 'build' passes input 'targte', which "
                                 "'./.github/workflows/build.yml' does not declare (did you mean 'target'?)"),
            std::string::npos)
      << validate.output;
  EXPECT_NE(validate.output.find("ci.yml:4:11: error: job 'build' does not pass the required input 'target'"),
            std::string::npos)
      << validate.output;
  EXPECT_NE(validate.output.find("ci.yml:8:11: note: reusable workflow 'acme/pipes/.github/workflows/deploy.yml@v1' "
                                 "was not checked"),
            std::string::npos)
      << validate.output;

  // A remote reusable workflow the actions source lacks (an empty folder here: tests
  // reach nothing beyond this machine) fails the run when it is prepared, naming the
  // command that fills the cache.
  make_repo(repo_.path(), {{".github/workflows/ci.yml", R"Y(on: push
jobs:
  deploy:
    uses: acme/pipes/.github/workflows/deploy.yml@v1
)Y"}});
  TempDir empty_source;
  auto r = run({"--actions-source", empty_source.path().string()});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ci.yml:4:11: error: cannot read reusable workflow"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("sandci actions add acme/pipes@v1"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
