#include "scheduler/workflow_loader.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>


#include <filesystem>
#include <fstream>

namespace sandci::scheduler {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;

struct Loaded {
  LoadResult result;
  // "line:col: message" for each diagnostic, in order.
  std::vector<std::string> errors;
  const Workflow& workflow() const { return result.workflows.at(0); }
};

Loaded load_text(const std::string& yaml, LoaderLimits limits = {}) {
  TempDir dir{"sandci-loader-"};
  auto file = dir.write("ci.yml", yaml);
  Loaded loaded{load_workflow_file(file, limits), {}};
  for (const auto& d : loaded.result.diagnostics) {
    EXPECT_EQ(d.location.file, file.string());
    loaded.errors.push_back(std::to_string(d.location.line) + ":" +
                            std::to_string(d.location.column) + ": " + d.message);
  }
  return loaded;
}

// Asserts that exactly one error is reported, at line:col, and that its message
// contains `fragment`.
void expect_one_error(const std::string& yaml, const std::string& position,
                      const std::string& fragment) {
  auto loaded = load_text(yaml);
  ASSERT_EQ(loaded.errors.size(), 1u) << ::testing::PrintToString(loaded.errors);
  EXPECT_TRUE(loaded.errors[0].starts_with(position + ": ")) << loaded.errors[0];
  EXPECT_NE(loaded.errors[0].find(fragment), std::string::npos) << loaded.errors[0];
  EXPECT_TRUE(loaded.result.workflows.empty());
}

const char* kMinimal = R"(on: push
jobs:
  build:
    steps:
      - run: make
)";

// ---- what loads ------------------------------------------------------------------

TEST(WorkflowLoader, MinimalWorkflowLoads) {
  auto loaded = load_text(kMinimal);
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  const Workflow& w = loaded.workflow();
  ASSERT_TRUE(w.on.push.has_value());
  EXPECT_FALSE(w.on.pull_request.has_value());
  ASSERT_EQ(w.jobs.size(), 1u);
  EXPECT_EQ(w.jobs[0].id, "build");
  EXPECT_EQ(w.jobs[0].location.line, 3);
  EXPECT_EQ(w.jobs[0].location.column, 3);
  ASSERT_EQ(w.jobs[0].steps.size(), 1u);
  EXPECT_EQ(w.jobs[0].steps[0].run, "make");
  EXPECT_EQ(w.jobs[0].steps[0].location.line, 5);
  EXPECT_EQ(w.jobs[0].timeout_minutes, 360);
}

TEST(WorkflowLoader, FullWorkflowFillsTheModel) {
  auto loaded = load_text(R"(name: CI
on:
  push:
    branches: [main, 'releases/**']
    tags: v*
    paths-ignore: [docs/**]
  pull_request:
    branches: [main]
    types: [opened, labeled]
  workflow_dispatch:
    inputs:
      level:
        description: How loud
        type: choice
        options: [low, high]
        default: low
      dry:
        type: boolean
        required: true
        default: false
env:
  GREETING: hello
  COUNT: 3
defaults:
  run:
    shell: bash
    working-directory: src
concurrency:
  group: ci-${{ github.ref }}
  cancel-in-progress: true
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make lint
  test:
    name: Test ${{ matrix.os }}
    needs: lint
    runs-on: [self-hosted, linux]
    container:
      image: debian:12
      env: {LANG: C.UTF-8}
      options: --cpus 2
    env:
      LEVEL: ${{ inputs.level }}
    timeout-minutes: 30
    continue-on-error: ${{ matrix.experimental }}
    if: github.event_name == 'push'
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix:
        os: [bookworm, trixie]
        cfg: [{cc: gcc}, {cc: clang}]
        include:
          - os: sid
            experimental: true
        exclude:
          - os: trixie
            cfg: {cc: clang}
    outputs:
      result: ${{ steps.run.outputs.result }}
    defaults:
      run:
        shell: sh
    steps:
      - id: run
        name: Run tests
        run: |
          make test
          echo "result=ok" >> "$GITHUB_OUTPUT"
        shell: bash
        working-directory: tests
        env:
          VERBOSE: 1
        if: always()
        continue-on-error: true
        timeout-minutes: 5.5
      - uses: actions/upload-artifact@v4
        with:
          name: logs
          path: out/
)");
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  const Workflow& w = loaded.workflow();
  EXPECT_EQ(w.name, "CI");
  EXPECT_EQ(w.on.push->branches, (std::vector<std::string>{"main", "releases/**"}));
  EXPECT_EQ(w.on.push->tags, (std::vector<std::string>{"v*"}));
  EXPECT_EQ(w.on.push->paths_ignore, (std::vector<std::string>{"docs/**"}));
  EXPECT_EQ(w.on.pull_request->types, (std::vector<std::string>{"opened", "labeled"}));
  ASSERT_EQ(w.on.workflow_dispatch->inputs.size(), 2u);
  const DispatchInput& level = w.on.workflow_dispatch->inputs[0];
  EXPECT_EQ(level.name, "level");
  EXPECT_EQ(level.description, "How loud");
  EXPECT_EQ(level.type, "choice");
  EXPECT_EQ(level.options, (std::vector<std::string>{"low", "high"}));
  EXPECT_EQ(level.default_value, nlohmann::json("low"));
  const DispatchInput& dry = w.on.workflow_dispatch->inputs[1];
  EXPECT_TRUE(dry.required);
  EXPECT_EQ(dry.default_value, nlohmann::json(false));
  EXPECT_EQ(w.env, (StringMap{{"GREETING", "hello"}, {"COUNT", "3"}}));
  EXPECT_EQ(w.defaults.shell, "bash");
  EXPECT_EQ(w.defaults.working_directory, "src");
  ASSERT_TRUE(w.concurrency);
  EXPECT_EQ(w.concurrency->group, "ci-${{ github.ref }}");
  EXPECT_EQ(w.concurrency->cancel_in_progress, "true");

  ASSERT_EQ(w.jobs.size(), 2u);
  const Job& test = w.jobs[1];
  EXPECT_EQ(test.name, "Test ${{ matrix.os }}");
  EXPECT_EQ(test.needs, (std::vector<std::string>{"lint"}));
  EXPECT_EQ(test.runs_on, (std::vector<std::string>{"self-hosted", "linux"}));
  ASSERT_TRUE(test.container);
  EXPECT_EQ(test.container->image, "debian:12");
  EXPECT_EQ(test.container->env, (StringMap{{"LANG", "C.UTF-8"}}));
  EXPECT_EQ(test.container->options, "--cpus 2");
  EXPECT_EQ(test.timeout_minutes, 30);
  EXPECT_EQ(test.continue_on_error, "${{ matrix.experimental }}");
  EXPECT_EQ(test.if_condition, "github.event_name == 'push'");
  ASSERT_TRUE(test.strategy);
  EXPECT_FALSE(test.strategy->fail_fast);
  EXPECT_EQ(test.strategy->max_parallel, 2);
  const Matrix& m = test.strategy->matrix;
  ASSERT_EQ(m.dimensions.size(), 2u);
  EXPECT_EQ(m.dimensions[0].first, "os");
  EXPECT_EQ(m.dimensions[0].second, (std::vector<nlohmann::json>{"bookworm", "trixie"}));
  EXPECT_EQ(m.dimensions[1].second[1], nlohmann::json({{"cc", "clang"}}));
  ASSERT_EQ(m.include.size(), 1u);
  EXPECT_EQ(m.include[0], nlohmann::json({{"os", "sid"}, {"experimental", true}}));
  ASSERT_EQ(m.exclude.size(), 1u);
  EXPECT_EQ(m.exclude[0]["cfg"]["cc"], "clang");
  EXPECT_EQ(test.outputs, (StringMap{{"result", "${{ steps.run.outputs.result }}"}}));
  EXPECT_EQ(test.defaults.shell, "sh");

  ASSERT_EQ(test.steps.size(), 2u);
  const Step& run = test.steps[0];
  EXPECT_EQ(run.id, "run");
  EXPECT_EQ(run.name, "Run tests");
  EXPECT_EQ(run.run, "make test\necho \"result=ok\" >> \"$GITHUB_OUTPUT\"\n");
  EXPECT_EQ(run.shell, "bash");
  EXPECT_EQ(run.working_directory, "tests");
  EXPECT_EQ(run.env, (StringMap{{"VERBOSE", "1"}}));
  EXPECT_EQ(run.if_condition, "always()");
  EXPECT_EQ(run.continue_on_error, "true");
  EXPECT_EQ(run.timeout_minutes, 5.5);
  const Step& upload = test.steps[1];
  EXPECT_FALSE(upload.run.has_value());
  EXPECT_EQ(upload.uses, "actions/upload-artifact@v4");
  EXPECT_EQ(upload.with, (StringMap{{"name", "logs"}, {"path", "out/"}}));
}

TEST(WorkflowLoader, OnAsStringListOrQuotedKey) {
  // YAML 1.1 reads a bare `on` as the boolean true; the key must still be 'on'.
  auto list = load_text("on: [push, pull_request]\njobs: {a: {steps: [{run: x}]}}\n");
  ASSERT_TRUE(list.result.ok()) << ::testing::PrintToString(list.errors);
  EXPECT_TRUE(list.workflow().on.push);
  EXPECT_TRUE(list.workflow().on.pull_request);
  EXPECT_FALSE(list.workflow().on.workflow_dispatch);

  auto quoted = load_text("\"on\": workflow_dispatch\njobs: {a: {steps: [{run: x}]}}\n");
  ASSERT_TRUE(quoted.result.ok()) << ::testing::PrintToString(quoted.errors);
  EXPECT_TRUE(quoted.workflow().on.workflow_dispatch);
}

TEST(WorkflowLoader, NeedsAsStringAndRunsOnAsString) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{run: x}]
  b:
    needs: a
    steps: [{run: y}]
)");
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.workflow().jobs[0].runs_on, (std::vector<std::string>{"ubuntu-latest"}));
  EXPECT_EQ(loaded.workflow().jobs[1].needs, (std::vector<std::string>{"a"}));
}

TEST(WorkflowLoader, ConcurrencyAsString) {
  auto loaded = load_text("on: push\nconcurrency: deploy\njobs: {a: {steps: [{run: x}]}}\n");
  ASSERT_TRUE(loaded.result.ok());
  EXPECT_EQ(loaded.workflow().concurrency->group, "deploy");
  EXPECT_EQ(loaded.workflow().concurrency->cancel_in_progress, "false");
}

TEST(WorkflowLoader, ContainerAsString) {
  auto loaded = load_text("on: push\njobs: {a: {container: alpine:3, steps: [{run: x}]}}\n");
  ASSERT_TRUE(loaded.result.ok());
  EXPECT_EQ(loaded.workflow().jobs[0].container->image, "alpine:3");
}

TEST(WorkflowLoader, MatrixValuesKeepTheirYamlTypes) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    strategy:
      matrix:
        n: [1, 2.5, "3", true, null, text]
    steps: [{run: x}]
)");
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  const auto& values = loaded.workflow().jobs[0].strategy->matrix.dimensions[0].second;
  EXPECT_EQ(values, (std::vector<nlohmann::json>{1, 2.5, "3", true, nullptr, "text"}));
}

TEST(WorkflowLoader, IncludeOnlyMatrixIsValid) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    strategy:
      matrix:
        include: [{os: a}, {os: b}]
    steps: [{run: x}]
)");
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.workflow().jobs[0].strategy->matrix.include.size(), 2u);
}

TEST(WorkflowLoader, AliasesWithinBudgetAreFine) {
  auto loaded = load_text(R"(on: push
env: &common
  A: x
jobs:
  a:
    env: *common
    steps: [{run: x}]
)");
  ASSERT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.workflow().jobs[0].env, (StringMap{{"A", "x"}}));
}

// ---- one error each, at its exact position --------------------------------------

TEST(WorkflowLoaderErrors, UnknownJobKeySuggestsNearMiss) {
  expect_one_error("on: push\njobs:\n  a:\n    runs_on: x\n    steps: [{run: x}]\n", "4:5",
                   "unknown key 'runs_on' in job 'a' (did you mean 'runs-on'?)");
}

TEST(WorkflowLoaderErrors, UnknownTopLevelKey) {
  expect_one_error("on: push\njob:\n  a:\n    steps: [{run: x}]\njobs: {a: {steps: [{run: x}]}}\n",
                   "2:1", "unknown key 'job' in the workflow (did you mean 'jobs'?)");
}

TEST(WorkflowLoaderErrors, UnknownKeyFarFromAnyGetsNoSuggestion) {
  auto loaded = load_text("on: push\nzzzzzzzz: 1\njobs: {a: {steps: [{run: x}]}}\n");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0], "2:1: unknown key 'zzzzzzzz' in the workflow");
}

TEST(WorkflowLoaderErrors, UnknownStepKey) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        nmae: y\n", "6:9",
                   "unknown key 'nmae' in step 1 of job 'a' (did you mean 'name'?)");
}

TEST(WorkflowLoaderErrors, GithubKeysSandciDoesNotSupport) {
  expect_one_error("on: push\njobs:\n  a:\n    services: {}\n    steps: [{run: x}]\n", "4:5",
                   "'services' in job 'a' is not supported by sandci");
}

TEST(WorkflowLoaderErrors, WrongTypes) {
  expect_one_error("on: push\nenv: [A]\njobs: {a: {steps: [{run: x}]}}\n", "2:6",
                   "'env' must be a mapping, not a list");
  expect_one_error("on: push\njobs:\n  a:\n    runs-on: {group: x}\n    steps: [{run: x}]\n",
                   "4:14", "'runs-on' must be a string or a list of strings, not a mapping");
  expect_one_error("on: push\njobs:\n  a:\n    steps: {run: x}\n", "4:12",
                   "'steps' must be a list of steps, not a mapping");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: [x]\n", "5:14",
                   "'run' must be a string, not a list");
  expect_one_error("on: push\njobs:\n  a:\n    strategy: {fail-fast: maybe, matrix: {x: [1]}}\n"
                   "    steps: [{run: x}]\n",
                   "4:27", "'fail-fast' must be true or false, not 'maybe'");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        env:\n          A: {b: c}\n",
                   "7:14", "'env.A' must be a string, not a mapping");
}

TEST(WorkflowLoaderErrors, DuplicateJobId) {
  expect_one_error("on: push\njobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: [{run: y}]\n",
                   "5:3", "duplicate key 'a' in 'jobs'");
}

TEST(WorkflowLoaderErrors, DuplicateStepId) {
  expect_one_error(R"(on: push
jobs:
  a:
    steps:
      - id: build
        run: x
      - run: y
        id: build
)",
                   "8:13", "duplicate step id 'build' in job 'a' (first used at line 5)");
}

TEST(WorkflowLoaderErrors, NeedsMissingJob) {
  expect_one_error(R"(on: push
jobs:
  build:
    steps: [{run: x}]
  test:
    needs: [biuld]
    steps: [{run: y}]
)",
                   "6:13", "job 'test' needs 'biuld', which is not a job in this workflow "
                           "(did you mean 'build'?)");
}

TEST(WorkflowLoaderErrors, CycleIsNamedInFileOrder) {
  expect_one_error(R"(on: push
jobs:
  a:
    needs: b
    steps: [{run: x}]
  b:
    needs: c
    steps: [{run: x}]
  c:
    needs: [a]
    steps: [{run: x}]
)",
                   "4:12", "dependency cycle: a -> b -> c -> a");
}

TEST(WorkflowLoaderErrors, CycleStartsAtTheFirstJobOfTheFile) {
  // The search meets c first, but the message starts at a, the first job written.
  expect_one_error(R"(on: push
jobs:
  c:
    needs: a
    steps: [{run: x}]
  a:
    needs: b
    steps: [{run: x}]
  b:
    needs: c
    steps: [{run: x}]
)",
                   "4:12", "dependency cycle: c -> a -> b -> c");
}

TEST(WorkflowLoaderErrors, SelfDependencyIsACycle) {
  expect_one_error("on: push\njobs:\n  a:\n    needs: a\n    steps: [{run: x}]\n", "4:12",
                   "dependency cycle: a -> a");
}

TEST(WorkflowLoaderErrors, TwoCyclesAreBothReported) {
  auto loaded = load_text(R"(on: push
jobs:
  a: {needs: b, steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: d, steps: [{run: x}]}
  d: {needs: c, steps: [{run: x}]}
)");
  ASSERT_EQ(loaded.errors.size(), 2u) << ::testing::PrintToString(loaded.errors);
  EXPECT_NE(loaded.errors[0].find("a -> b -> a"), std::string::npos);
  EXPECT_NE(loaded.errors[1].find("c -> d -> c"), std::string::npos);
}

TEST(WorkflowLoaderErrors, JobWithoutSteps) {
  expect_one_error("on: push\njobs:\n  a:\n    runs-on: x\n", "3:3", "job 'a' has no steps");
  expect_one_error("on: push\njobs:\n  a:\n", "3:3", "job 'a' has no steps");
  expect_one_error("on: push\njobs:\n  a:\n    steps: []\n", "4:12",
                   "'steps' must hold at least one step");
}

TEST(WorkflowLoaderErrors, StepWithBothRunAndUses) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        uses: actions/checkout@v4\n",
                   "6:9", "step 1 of job 'a' has both 'run' and 'uses'");
}

TEST(WorkflowLoaderErrors, StepWithNeitherRunNorUses) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n      - name: nothing\n",
                   "6:9", "step 2 of job 'a' needs either 'run' or 'uses'");
}

TEST(WorkflowLoader, StepUsesAcceptsLocalAndRemoteActions) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with: {node-version: 20}
      - uses: ./.github/actions/setup
      - uses: acme/tools/lint@0123456789abcdef0123456789abcdef01234567
)");
  ASSERT_TRUE(loaded.errors.empty()) << ::testing::PrintToString(loaded.errors);
  const auto& steps = loaded.workflow().jobs[0].steps;
  ASSERT_EQ(steps.size(), 4u);
  ASSERT_TRUE(steps[1].action);
  EXPECT_EQ(steps[1].uses, "actions/setup-node@v4");
  EXPECT_EQ(steps[1].action->kind, UsesRef::Kind::remote);
  EXPECT_EQ(steps[1].action->repository(), "actions/setup-node");
  EXPECT_EQ(steps[1].action->ref, "v4");
  ASSERT_TRUE(steps[2].action);
  EXPECT_EQ(steps[2].action->kind, UsesRef::Kind::local);
  EXPECT_EQ(steps[2].action->path, ".github/actions/setup");
  ASSERT_TRUE(steps[3].action);
  EXPECT_EQ(steps[3].action->path, "lint");
}

TEST(WorkflowLoaderErrors, DockerActionsAreRefusedWithTheReason) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: docker://alpine\n", "5:15",
                   "'uses: docker://alpine' is not supported by sandci: a docker:// action pulls an image from a "
                   "registry, which jobs cannot reach; run the job in an image from the agent's store with "
                   "'container:' instead");
}

TEST(WorkflowLoaderErrors, MalformedStepUsesSaysWhatIsWrong) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout\n", "5:15",
                   "must name a version after '@'");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@\n", "5:15",
                   "must name a version after '@'");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: ./../outside\n", "5:15",
                   "climbs out of its repository");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: checkout@v4\n", "5:15",
                   "must be ./path (an action in this repository), owner/repo[/path]@ref");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: ./\n", "5:15",
                   "must name a folder with an action.yml");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - uses: acme/${{ matrix.x }}@v1\n", "5:15",
                   "'uses' cannot hold an expression");
}

TEST(WorkflowLoaderErrors, WithOnlyForUsesAndShellOnlyForRun) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        with: {a: b}\n",
                   "6:9", "'with' is only allowed in a step with 'uses'");
  expect_one_error(
      "on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n        shell: bash\n",
      "6:9", "'shell' is only allowed in a step with 'run'");
}

TEST(WorkflowLoaderErrors, InvalidJobAndStepIds) {
  expect_one_error("on: push\njobs:\n  1build:\n    steps: [{run: x}]\n", "3:3",
                   "invalid job id '1build'");
  expect_one_error("on: push\njobs:\n  my.job:\n    steps: [{run: x}]\n", "3:3",
                   "invalid job id 'my.job'");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - id: 'has space'\n        run: x\n",
                   "5:13", "invalid step id 'has space'");
}

TEST(WorkflowLoaderErrors, ValidIdsWithDashAndUnderscore) {
  auto loaded = load_text("on: push\njobs:\n  _build-1:\n    steps:\n      - id: s_1-a\n        run: x\n");
  EXPECT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
}

TEST(WorkflowLoaderErrors, TimeoutMustBePositive) {
  expect_one_error("on: push\njobs:\n  a:\n    timeout-minutes: 0\n    steps: [{run: x}]\n", "4:22",
                   "'timeout-minutes' must be a positive number, not '0'");
  expect_one_error("on: push\njobs:\n  a:\n    timeout-minutes: -5\n    steps: [{run: x}]\n", "4:22",
                   "must be a positive number");
  expect_one_error("on: push\njobs:\n  a:\n    timeout-minutes: soon\n    steps: [{run: x}]\n",
                   "4:22", "must be a positive number");
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        timeout-minutes: '5'\n",
                   "6:26", "must be a positive number");
}

TEST(WorkflowLoaderErrors, MatrixEmptyDimension) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        os: []\n"
                   "    steps: [{run: x}]\n",
                   "6:13", "matrix dimension 'os' must not be empty");
}

TEST(WorkflowLoaderErrors, MatrixDimensionNotAList) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        os: linux\n"
                   "    steps: [{run: x}]\n",
                   "6:13", "matrix dimension 'os' must be a list of values, not 'linux'");
}

TEST(WorkflowLoaderErrors, MatrixIncludeEntriesMustBeMappings) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        os: [a]\n"
                   "        include: [b]\n    steps: [{run: x}]\n",
                   "7:19", "each entry of 'include' must be a mapping, not 'b'");
}

TEST(WorkflowLoaderErrors, MatrixExcludeUnknownKey) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        os: [a, b]\n"
                   "        exclude:\n          - oss: a\n    steps: [{run: x}]\n",
                   "8:13", "'exclude' names 'oss', which is not a matrix dimension (did you mean 'os'?)");
}

TEST(WorkflowLoaderErrors, MatrixWithoutCombinations) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix: {}\n    steps: [{run: x}]\n",
                   "5:15", "the matrix has no dimensions and no 'include'");
}

TEST(WorkflowLoaderErrors, MatrixWithTooManyJobs) {
  // 17 x 16 = 272 combinations; Actions allows 256.
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n"
                   "        x: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n"
                   "        y: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n"
                   "    steps: [{run: x}]\n",
                   "5:7", "matrix of job 'a' yields 272 jobs; at most 256 are allowed");
}

TEST(WorkflowLoaderErrors, MatrixExcludesBringItUnderTheLimit) {
  auto loaded = load_text("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n"
                          "        x: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n"
                          "        y: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]\n"
                          "        exclude: [{x: 17}]\n"
                          "    steps: [{run: x}]\n");
  EXPECT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
}

TEST(WorkflowLoader, MatrixFromExpressionIsKeptAsWritten) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    strategy:
      matrix: ${{ fromJSON(vars.MATRIX) }}
    steps: [{run: x}]
  b:
    strategy:
      matrix:
        os: ${{ fromJSON(needs.a.outputs.list) }}
        node: [18, 20]
    steps: [{run: x}]
)");
  ASSERT_TRUE(loaded.errors.empty()) << ::testing::PrintToString(loaded.errors);
  const Matrix& a = loaded.workflow().jobs[0].strategy->matrix;
  EXPECT_EQ(a.expression, "${{ fromJSON(vars.MATRIX) }}");
  EXPECT_TRUE(a.from_expression());
  const Matrix& b = loaded.workflow().jobs[1].strategy->matrix;
  ASSERT_EQ(b.dimension_expressions.size(), 1u);
  EXPECT_EQ(b.dimension_expressions[0].first, "os");
  ASSERT_EQ(b.dimensions.size(), 2u);
  EXPECT_EQ(b.dimensions[0].first, "os");
  EXPECT_TRUE(b.dimensions[0].second.empty());
}

TEST(WorkflowLoaderErrors, MatrixExpressionIsChecked) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy:\n      matrix: ${{ fromJSON( }}\n"
                   "    steps: [{run: x}]\n",
                   "5:29", "invalid expression: unexpected end of expression");
}

TEST(WorkflowLoaderErrors, MaxParallelMustBeAWholeNumber) {
  expect_one_error("on: push\njobs:\n  a:\n    strategy: {max-parallel: 1.5, matrix: {x: [1]}}\n"
                   "    steps: [{run: x}]\n",
                   "4:30", "'max-parallel' must be a positive whole number");
}

TEST(WorkflowLoaderErrors, BadExpressionInPlainScalarPointsInsideIt) {
  // `${{` at column 10; the (missing) expression starts at column 13.
  expect_one_error("on: push\nenv:\n  A: pre ${{ }}\njobs: {a: {steps: [{run: x}]}}\n", "3:13",
                   "invalid expression: expected an expression");
}

TEST(WorkflowLoaderErrors, UnterminatedExpressionInQuotedScalar) {
  // The value starts after the quote at column 7; `${{` is at offset 2 -> column 9.
  expect_one_error("on: push\nenv:\n  A: \"x ${{ github.sha\"\njobs: {a: {steps: [{run: x}]}}\n",
                   "3:9", "invalid expression");
}

TEST(WorkflowLoaderErrors, BadExpressionInLiteralBlockPointsAtItsLine) {
  expect_one_error(R"(on: push
jobs:
  a:
    steps:
      - run: |
          echo start
          echo ${{ github.sha
)",
                   "7:16", "invalid expression");
}

TEST(WorkflowLoaderErrors, BadIfConditionWithoutWrapper) {
  expect_one_error("on: push\njobs:\n  a:\n    if: a = b\n    steps: [{run: x}]\n", "4:11",
                   "invalid expression: unexpected token '='");
}

TEST(WorkflowLoaderErrors, BadIfConditionInsideWrapper) {
  expect_one_error("on: push\njobs:\n  a:\n    steps:\n      - run: x\n        if: ${{ }}\n",
                   "6:16", "invalid expression: expected an expression");
}

TEST(WorkflowLoaderErrors, ValidExpressionsPass) {
  auto loaded = load_text(R"(on: push
jobs:
  a:
    if: ${{ github.ref == 'refs/heads/main' }}
    steps:
      - run: echo ${{ github.sha }} ${{ matrix.os }}
        if: success() && github.event_name == 'push'
)");
  EXPECT_TRUE(loaded.result.ok()) << ::testing::PrintToString(loaded.errors);
}

TEST(WorkflowLoaderErrors, MissingOnAndJobs) {
  auto loaded = load_text("name: x\n");
  ASSERT_EQ(loaded.errors.size(), 2u) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.errors[0], "1:1: the workflow has no 'on': name the events that run it");
  EXPECT_EQ(loaded.errors[1], "1:1: the workflow has no 'jobs'");
}

TEST(WorkflowLoaderErrors, EmptyJobs) {
  expect_one_error("on: push\njobs: {}\n", "2:7", "'jobs' must define at least one job");
}

TEST(WorkflowLoaderErrors, UnknownEvents) {
  expect_one_error("on:\n  pushh:\njobs: {a: {steps: [{run: x}]}}\n", "2:3",
                   "unknown event 'pushh' (did you mean 'push'?)");
}

TEST(WorkflowLoaderErrors, FilterConflictsAndBadPatterns) {
  expect_one_error("on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\njobs: {a: {steps: [{run: x}]}}\n",
                   "4:5", "'branches' and 'branches-ignore' cannot both be used");
  expect_one_error("on:\n  push:\n    branches: [main, 'rel[']\njobs: {a: {steps: [{run: x}]}}\n",
                   "3:22", "invalid pattern 'rel[' in 'branches': unterminated character class");
  expect_one_error("on:\n  pull_request:\n    types: [opened, synchronise]\njobs: {a: {steps: [{run: x}]}}\n",
                   "3:21", "unknown pull_request type 'synchronise' (did you mean 'synchronize'?)");
  expect_one_error("on:\n  pull_request:\n    tags: [v1]\njobs: {a: {steps: [{run: x}]}}\n", "3:5",
                   "unknown key 'tags' in 'pull_request'");
}

TEST(WorkflowLoaderErrors, DispatchInputs) {
  expect_one_error(R"(on:
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [low, high]
        default: medium
jobs: {a: {steps: [{run: x}]}}
)",
                   "7:18", "the default 'medium' is not one of the options");
  expect_one_error("on:\n  workflow_dispatch:\n    inputs:\n      x:\n        type: text\n"
                   "jobs: {a: {steps: [{run: x}]}}\n",
                   "5:15", "unknown input type 'text'");
  expect_one_error("on:\n  workflow_dispatch:\n    inputs:\n      x:\n        type: boolean\n"
                   "        default: yes\njobs: {a: {steps: [{run: x}]}}\n",
                   "6:18", "the default of a boolean input must be true or false");
}

TEST(WorkflowLoaderErrors, EveryErrorIsReportedAtOnceInFileOrder) {
  auto loaded = load_text(R"(on: push
jobs:
  build:
    runs_on: x
    needs: nope
    steps:
      - run: x
        uses: actions/checkout@v4
      - uses: docker://else
  test:
    timeout-minutes: 0
    steps: []
)");
  ASSERT_EQ(loaded.errors.size(), 6u) << ::testing::PrintToString(loaded.errors);
  EXPECT_TRUE(loaded.errors[0].starts_with("4:5: unknown key 'runs_on'"));
  EXPECT_TRUE(loaded.errors[1].starts_with("5:12: job 'build' needs 'nope'"));
  EXPECT_TRUE(loaded.errors[2].starts_with("8:9: step 1 of job 'build' has both"));
  EXPECT_TRUE(loaded.errors[3].starts_with("9:15: 'uses: docker://else'"));
  EXPECT_TRUE(loaded.errors[4].starts_with("11:22: 'timeout-minutes'"));
  EXPECT_TRUE(loaded.errors[5].starts_with("12:12: 'steps' must hold"));
}

// ---- broken and hostile YAML ------------------------------------------------------

TEST(WorkflowLoaderHostile, SyntaxErrorHasLineAndColumn) {
  expect_one_error("on: push\njobs:\n  a:\n    steps: [{run: x}\n  b: c\n", "5:3",
                   "invalid YAML: end of sequence flow not found");
}

TEST(WorkflowLoaderHostile, UnknownAliasIsAnError) {
  expect_one_error("on: push\njobs: *nothing\n", "2:7", "invalid YAML");
}

TEST(WorkflowLoaderHostile, EmptyFile) {
  expect_one_error("", "1:1", "the file is empty");
  expect_one_error("# only a comment\n", "1:1", "the file is empty");
}

TEST(WorkflowLoaderHostile, TwoDocuments) {
  expect_one_error(std::string{kMinimal} + "---\n" + kMinimal, "6:1",
                   "exactly one YAML document");
}

TEST(WorkflowLoaderHostile, TopLevelNotAMapping) {
  expect_one_error("- on: push\n", "1:1", "the workflow must be a mapping, not a list");
}

TEST(WorkflowLoaderHostile, BillionLaughsStopsAtTheNodeBudget) {
  std::string yaml = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    yaml += std::string{c} + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) yaml += std::string{i ? ", *" : "*"} + static_cast<char>(c - 1);
    yaml += "]\n";
  }
  yaml += "on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        x: *j\n    steps: [{run: x}]\n";
  expect_one_error(yaml, "1:1", "nodes once aliases are expanded");
}

TEST(WorkflowLoaderHostile, DeepFlowNestingStopsWithPosition) {
  std::string yaml = "on: push\nenv: " + std::string(10'000, '[') + std::string(10'000, ']') + "\n";
  // The 65th opening bracket (depth 64 counts the top-level mapping) is at column 70.
  expect_one_error(yaml, "2:69", "YAML nesting is deeper than 64 levels");
}

TEST(WorkflowLoaderHostile, DeepBlockNestingStops) {
  std::string yaml = "on: push\n";
  for (int i = 0; i < 1000; ++i) yaml += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
  auto loaded = load_text(yaml);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_NE(loaded.errors[0].find("YAML nesting is deeper than 64 levels"), std::string::npos);
}

TEST(WorkflowLoaderHostile, TooManyNodesStopsBeforeBuildingTheTree) {
  // Just under 1 MiB of one-character list entries: about 350,000 nodes.
  std::string yaml = "on: push\nenv: [";
  while (yaml.size() < 1'000'000) yaml += "1,";
  yaml += "1]\njobs: {a: {steps: [{run: x}]}}\n";
  auto loaded = load_text(yaml);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_NE(loaded.errors[0].find("the document has more than 100000 YAML nodes"),
            std::string::npos)
      << loaded.errors[0];
  EXPECT_TRUE(loaded.errors[0].starts_with("2:")) << loaded.errors[0];
}

TEST(WorkflowLoaderHostile, ManyJobsWithinLimitsLoad) {
  std::string yaml = "on: push\njobs:\n";
  for (int i = 0; i < 2000; ++i)
    yaml += "  job" + std::to_string(i) + ":\n    needs: [job" + std::to_string(i ? i - 1 : 0) +
            "]\n    steps:\n      - run: echo ${{ github.sha }}\n";
  // job0 needs itself: exactly one error, the cycle.
  auto loaded = load_text(yaml);
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0], "4:13: dependency cycle: job0 -> job0 (each job needs the next)");
}

TEST(WorkflowLoaderHostile, HugeFileIsRefusedWithoutParsing) {
  TempDir dir{"sandci-loader-"};
  auto file = dir.path() / "huge.yml";
  {
    std::ofstream out{file, std::ios::binary};
    const std::string line(1023, 'a');
    for (int i = 0; i < 50 * 1024; ++i) out << line << '\n';  // 50 MiB
  }
  auto result = load_workflow_file(file);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].message,
            "the file is 52428800 bytes; workflow files are limited to 1048576 bytes");
  EXPECT_TRUE(result.workflows.empty());
}

TEST(WorkflowLoaderHostile, ParseWorkflowRefusesLargeText) {
  Diagnostics diagnostics;
  LoaderLimits limits;
  limits.max_file_bytes = 16;
  EXPECT_FALSE(parse_workflow(kMinimal, "x.yml", diagnostics, limits));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_NE(diagnostics[0].message.find("limited to 16 bytes"), std::string::npos);
}

TEST(WorkflowLoaderHostile, MissingFile) {
  auto result = load_workflow_file("/nonexistent/sandci/ci.yml");
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_NE(result.diagnostics[0].message.find("cannot read the file"), std::string::npos);
}

TEST(WorkflowLoaderHostile, NonStringKeys) {
  expect_one_error("on: push\njobs:\n  [a]: {steps: [{run: x}]}\n", "3:3",
                   "keys in 'jobs' must be strings");
}

// ---- repository folders -------------------------------------------------------

TEST(WorkflowLoaderFolders, FirstExistingFolderWinsAndFilesAreSorted) {
  TempDir dir{"sandci-loader-"};
  dir.write(".github/workflows/ignored.yml", "not: loaded\n");
  dir.write(".gitea/workflows/b.yaml", kMinimal);
  dir.write(".gitea/workflows/a.yml", kMinimal);
  dir.write(".gitea/workflows/notes.txt", "not a workflow");
  auto result = load_workflows(dir.path());
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(result.diagnostics.size());
  EXPECT_EQ(result.directory, (dir.path() / ".gitea/workflows").string());
  ASSERT_EQ(result.files.size(), 2u);
  EXPECT_EQ(result.files[0], (dir.path() / ".gitea/workflows/a.yml").string());
  EXPECT_EQ(result.files[1], (dir.path() / ".gitea/workflows/b.yaml").string());
  ASSERT_EQ(result.workflows.size(), 2u);
  EXPECT_EQ(result.workflows[0].file, result.files[0]);
}

TEST(WorkflowLoaderFolders, SandciFolderComesFirst) {
  TempDir dir{"sandci-loader-"};
  dir.write(".github/workflows/gh.yml", kMinimal);
  dir.write(".sandci/workflows/mine.yml", kMinimal);
  auto result = load_workflows(dir.path());
  ASSERT_EQ(result.files.size(), 1u);
  EXPECT_TRUE(result.files[0].ends_with(".sandci/workflows/mine.yml"));
}

TEST(WorkflowLoaderFolders, SymlinkedWorkflowFileIsRefused) {
  // A repository must not make the loader read (and quote) a file outside it.
  TempDir dir{"sandci-loader-"};
  auto secret = dir.write("outside/secret.yml", "root: hunter2\n");
  dir.write(".github/workflows/a.yml", kMinimal);
  fs::create_symlink(secret, dir.path() / ".github/workflows/b.yml");
  auto result = load_workflows(dir.path());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].location.file, (dir.path() / ".github/workflows/b.yml").string());
  EXPECT_EQ(result.diagnostics[0].message, "is a symbolic link; workflow files must be regular files");
  EXPECT_EQ(result.files.size(), 2u);
  EXPECT_EQ(result.workflows.size(), 1u);
}

TEST(WorkflowLoaderFolders, SymlinkedWorkflowFolderIsRefused) {
  TempDir dir{"sandci-loader-"};
  dir.write("elsewhere/workflows/a.yml", kMinimal);
  fs::create_symlink(dir.path() / "elsewhere", dir.path() / ".github");
  auto result = load_workflows(dir.path());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].location.file, (dir.path() / ".github").string());
  EXPECT_TRUE(result.workflows.empty());
}

TEST(WorkflowLoaderFolders, NoFolderMeansNoFiles) {
  TempDir dir{"sandci-loader-"};
  auto result = load_workflows(dir.path());
  EXPECT_TRUE(result.files.empty());
  EXPECT_TRUE(result.directory.empty());
  EXPECT_TRUE(result.ok());
}

TEST(WorkflowLoaderFolders, ErrorsOfAllFilesSortedByFile) {
  TempDir dir{"sandci-loader-"};
  dir.write(".github/workflows/b.yml", "on: push\njobs: {x: {}}\n");
  dir.write(".github/workflows/a.yml", "on: push\njobz: 1\n");
  dir.write(".github/workflows/c.yml", kMinimal);
  auto result = load_workflows(dir.path());
  ASSERT_EQ(result.diagnostics.size(), 3u);
  EXPECT_TRUE(result.diagnostics[0].location.file.ends_with("a.yml"));  // no 'jobs' (1:1)
  EXPECT_TRUE(result.diagnostics[1].location.file.ends_with("a.yml"));  // 'jobz' (2:1)
  EXPECT_EQ(result.diagnostics[1].location.line, 2);
  EXPECT_TRUE(result.diagnostics[2].location.file.ends_with("b.yml"));
  ASSERT_EQ(result.workflows.size(), 1u);  // only the valid c.yml
  EXPECT_TRUE(result.workflows[0].file.ends_with("c.yml"));
}

TEST(WorkflowLoaderErrors, MisspelledStepsGivesBothErrors) {
  auto loaded = load_text("on: push\njobs:\n  a:\n    step:\n      - run: x\n");
  ASSERT_EQ(loaded.errors.size(), 2u) << ::testing::PrintToString(loaded.errors);
  EXPECT_EQ(loaded.errors[0], "3:3: job 'a' has no steps");
  EXPECT_EQ(loaded.errors[1], "4:5: unknown key 'step' in job 'a' (did you mean 'steps'?)");
}

}  // namespace
}  // namespace sandci::scheduler

namespace sandci::scheduler {
namespace {

// An `if:` that only half sits in `${{ }}` would fail when the job runs: validation
// reads conditions as the runner does and refuses it up front.
TEST(WorkflowLoaderConditions, MixedWrapperConditionIsAnError) {
  Diagnostics diagnostics;
  auto wf = parse_workflow("on: push\njobs:\n  a:\n    if: ${{ true }} && false\n    steps:\n      - run: x\n",
                           "ci.yml", diagnostics);
  EXPECT_FALSE(wf.has_value());
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].location.line, 4);
  EXPECT_NE(diagnostics[0].message.find("invalid expression"), std::string::npos) << diagnostics[0].message;
}

TEST(WorkflowLoaderConditions, WrappedAndBareConditionsAreFine) {
  for (const char* cond : {"${{ github.ref == 'refs/heads/main' }}", "always()", "${{ failure() }}"}) {
    Diagnostics diagnostics;
    std::string text = std::string("on: push\njobs:\n  a:\n    if: \"") + cond + "\"\n    steps:\n      - run: x\n";
    EXPECT_TRUE(parse_workflow(text, "ci.yml", diagnostics).has_value()) << cond;
    EXPECT_TRUE(diagnostics.empty()) << cond << ": " << (diagnostics.empty() ? "" : diagnostics[0].to_string());
  }
}

}  // namespace
}  // namespace sandci::scheduler
