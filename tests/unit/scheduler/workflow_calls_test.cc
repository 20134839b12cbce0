// Reusable workflows (job-level `uses:`), from loading through expansion and
// planning to running under the fake runner; and the other values GitHub lets an
// expression stand for (env, timeout-minutes, matrix).
#include "scheduler/workflow_calls.h"

#include <gtest/gtest.h>

#include "scheduler/executor.h"
#include "scheduler/matrix.h"
#include "scheduler/plan.h"
#include "scheduler/workflow_loader.h"
#include "scheduler_fakes.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sandci::scheduler {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::FakeRunner;
using testing::Script;
using Names = std::vector<std::string>;

// "line:col: message" of each diagnostic (errors and notes), in order.
std::vector<std::string> lines_of(const Diagnostics& diagnostics) {
  std::vector<std::string> out;
  for (const auto& d : diagnostics)
    out.push_back(d.location.file + ":" + std::to_string(d.location.line) + ":" + std::to_string(d.location.column) +
                  ": " + d.message);
  return out;
}

bool contains(const std::vector<std::string>& lines, const std::string& fragment) {
  for (const auto& line : lines)
    if (line.find(fragment) != std::string::npos) return true;
  return false;
}

// A repository's workflow files in memory, read through the WorkflowReader seam.
class Repository {
 public:
  void add(const std::string& path, std::string text) { files_[path] = std::move(text); }
  WorkflowReader reader() {
    return [this](const UsesRef& ref) -> std::expected<std::string, std::string> {
      reads.push_back(ref.kind == UsesRef::Kind::remote ? ref.repository() + "/" + ref.path + "@" + ref.ref
                                                        : ref.path);
      auto it = files_.find(ref.kind == UsesRef::Kind::remote ? ref.repository() + "/" + ref.path : ref.path);
      if (it == files_.end()) return std::unexpected("no such file");
      return it->second;
    };
  }
  // Loads `path` and expands its calls; nullopt (with diagnostics kept) on errors.
  std::optional<Workflow> load(const std::string& path, bool skip_remote = false) {
    diagnostics.clear();
    auto workflow = parse_workflow(files_.at(path), path, diagnostics);
    if (!workflow) return std::nullopt;
    CallOptions options;
    options.read = reader();
    options.skip_remote = skip_remote;
    return expand_calls(*workflow, options, diagnostics);
  }
  std::vector<std::string> messages() const { return lines_of(diagnostics); }

  Diagnostics diagnostics;
  std::vector<std::string> reads;

 private:
  std::map<std::string, std::string> files_;
};

const char* kBuildWorkflow = R"(name: build
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      optimize: {type: boolean, default: false}
      jobs: {type: number, default: 2}
    secrets:
      token: {required: false}
    outputs:
      artifact:
        description: what was built
        value: ${{ jobs.compile.outputs.file }}
env:
  FROM: called
defaults:
  run: {shell: sh, working-directory: src}
jobs:
  compile:
    outputs:
      file: ${{ steps.c.outputs.file }}
    steps:
      - id: c
        run: make ${{ inputs.target }}
  test:
    needs: compile
    steps:
      - run: make check
)";

const char* kCaller = R"(on: push
env:
  FROM: caller
jobs:
  setup:
    steps: [{run: echo}]
  build:
    needs: setup
    uses: ./.github/workflows/build.yml
    with:
      target: ${{ needs.setup.outputs.target }}
      optimize: true
    secrets:
      token: ${{ secrets.DEPLOY }}
  publish:
    needs: build
    steps:
      - run: echo ${{ needs.build.outputs.artifact }}
)";

// ---- loading -----------------------------------------------------------------------

TEST(WorkflowCallLoad, CallerJobKeepsWhatItPasses) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(kCaller, "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  const Job& build = workflow->jobs[1];
  ASSERT_TRUE(build.call);
  EXPECT_EQ(build.call->uses, "./.github/workflows/build.yml");
  EXPECT_EQ(build.call->ref.path, ".github/workflows/build.yml");
  EXPECT_EQ(build.call->with, (StringMap{{"target", "${{ needs.setup.outputs.target }}"}, {"optimize", "true"}}));
  EXPECT_EQ(build.call->secrets, (StringMap{{"token", "${{ secrets.DEPLOY }}"}}));
  EXPECT_FALSE(build.call->inherit_secrets);
  EXPECT_TRUE(build.steps.empty());
}

TEST(WorkflowCallLoad, WorkflowCallTriggerDeclaresInputsSecretsOutputs) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(kBuildWorkflow, "build.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  EXPECT_TRUE(diagnostics.empty()) << ::testing::PrintToString(lines_of(diagnostics));
  ASSERT_TRUE(workflow->on.workflow_call);
  const auto& call = *workflow->on.workflow_call;
  ASSERT_EQ(call.inputs.size(), 3u);
  EXPECT_EQ(call.inputs[0].name, "target");
  EXPECT_TRUE(call.inputs[0].required);
  EXPECT_EQ(call.inputs[1].type, "boolean");
  EXPECT_EQ(*call.inputs[1].default_value, json(false));
  EXPECT_EQ(*call.inputs[2].default_value, json(2));
  ASSERT_EQ(call.secrets.size(), 1u);
  EXPECT_EQ(call.secrets[0], (std::pair<std::string, bool>{"token", false}));
  ASSERT_EQ(call.outputs.size(), 1u);
  EXPECT_EQ(call.outputs[0].value, "${{ jobs.compile.outputs.file }}");
}

TEST(WorkflowCallLoad, SecretsInheritAndRemoteCalls) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  deploy:
    uses: acme/pipelines/.github/workflows/deploy.yml@v2
    secrets: inherit
    permissions: {contents: read}
    concurrency: deploy
    strategy:
      matrix:
        region: [eu, us]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  const auto& call = *workflow->jobs[0].call;
  EXPECT_TRUE(call.inherit_secrets);
  EXPECT_EQ(call.ref.kind, UsesRef::Kind::remote);
  EXPECT_EQ(call.ref.repository(), "acme/pipelines");
  EXPECT_EQ(call.ref.path, ".github/workflows/deploy.yml");
  EXPECT_EQ(call.ref.ref, "v2");
}

TEST(WorkflowCallLoad, StepsAndRunsOnBesideUsesAreErrors) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    runs-on: ubuntu-latest
    steps: [{run: make}]
)",
                                 "ci.yml", diagnostics);
  EXPECT_FALSE(workflow);
  auto lines = lines_of(diagnostics);
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0],
            "ci.yml:5:5: 'runs-on' is not allowed in job 'build', which calls a reusable workflow with 'uses': "
            "the called workflow's jobs say where and how they run");
  EXPECT_TRUE(lines[1].starts_with("ci.yml:6:5: 'steps' is not allowed in job 'build'")) << lines[1];
}

TEST(WorkflowCallLoad, MalformedCallsSayWhatIsWrong) {
  auto errors_of = [](const std::string& uses_line) {
    Diagnostics diagnostics;
    parse_workflow("on: push\njobs:\n  a:\n    " + uses_line + "\n", "ci.yml", diagnostics);
    return lines_of(diagnostics);
  };
  auto lines = errors_of("uses: acme/pipelines/.github/workflows/deploy.yml");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].starts_with("ci.yml:4:11: ")) << lines[0];
  EXPECT_TRUE(contains(lines, "must name a version after '@'"));
  lines = errors_of("uses: ./tools/build.yml");
  EXPECT_TRUE(contains(lines, "must name a workflow file in .github/workflows/")) << ::testing::PrintToString(lines);
  lines = errors_of("uses: actions/checkout@v4");
  EXPECT_TRUE(contains(lines, "actions are used in steps")) << ::testing::PrintToString(lines);
  lines = errors_of("uses: ./.github/workflows/b.yml\n    with: ${{ fromJSON(vars.ARGS) }}");
  EXPECT_TRUE(contains(lines, "GitHub does not allow an expression in its place")) << ::testing::PrintToString(lines);
  lines = errors_of("uses: ./.github/workflows/b.yml\n    secrets: everything");
  EXPECT_TRUE(contains(lines, "'secrets' must be 'inherit' or a mapping")) << ::testing::PrintToString(lines);
}

TEST(WorkflowCallLoad, WithWithoutUsesIsAnError) {
  Diagnostics diagnostics;
  parse_workflow("on: push\njobs:\n  a:\n    with: {x: 1}\n    steps: [{run: x}]\n", "ci.yml", diagnostics);
  auto lines = lines_of(diagnostics);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "ci.yml:4:5: 'with' is only allowed in a job with 'uses' (a reusable workflow call)");
}

TEST(WorkflowCallLoad, BadWorkflowCallDeclarations) {
  Diagnostics diagnostics;
  parse_workflow(R"(on:
  workflow_call:
    inputs:
      level: {type: choice}
      size: {type: number, default: big}
      name: {required: true}
    outputs:
      out: {description: nothing}
jobs:
  a: {steps: [{run: x}]}
)",
                 "w.yml", diagnostics);
  auto lines = lines_of(diagnostics);
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_TRUE(lines[0].starts_with("w.yml:4:21: unknown input type 'choice'")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("w.yml:5:37: the default of a number input must be a number")) << lines[1];
  EXPECT_TRUE(lines[2].starts_with("w.yml:6:7: input 'name' of workflow_call needs a 'type'")) << lines[2];
  EXPECT_TRUE(lines[3].starts_with("w.yml:8:7: output 'out' needs a 'value'")) << lines[3];
}

// ---- expansion ---------------------------------------------------------------------

TEST(WorkflowCallExpand, CalledJobsJoinThePlanUnderTheCaller) {
  Repository repo;
  repo.add("ci.yml", kCaller);
  repo.add(".github/workflows/build.yml", kBuildWorkflow);
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  EXPECT_EQ(repo.reads, Names{".github/workflows/build.yml"});

  Names ids;
  for (const auto& job : workflow->jobs) ids.push_back(job.id);
  EXPECT_EQ(ids, (Names{"setup", "build/compile", "build/test", "build", "publish"}));
  const Job& compile = *workflow->find_job("build/compile");
  EXPECT_EQ(compile.name, "build / compile");
  EXPECT_EQ(compile.needs, Names{"setup"});  // the caller's needs
  EXPECT_EQ(workflow->find_job("build/test")->needs, Names{"build/compile"});
  ASSERT_TRUE(compile.frame);
  EXPECT_EQ(compile.frame->caller, "build");
  ASSERT_TRUE(compile.scope);
  EXPECT_EQ(compile.scope->env, (StringMap{{"FROM", "called"}}));
  EXPECT_EQ(compile.scope->defaults.shell, "sh");
  EXPECT_EQ(compile.scope->defaults.working_directory, "src");

  const Job& join = *workflow->find_job("build");
  ASSERT_TRUE(join.call && join.call->expanded);
  EXPECT_EQ(join.needs, (Names{"build/compile", "build/test"}));
  EXPECT_EQ(join.call->caller_needs, Names{"setup"});
  EXPECT_EQ(join.outputs, (StringMap{{"artifact", "${{ jobs.compile.outputs.file }}"}}));

  auto plan = Plan::build(*workflow);
  ASSERT_TRUE(plan);
  Names order;
  for (std::size_t i : plan->order()) order.push_back(plan->concrete(i).name);
  EXPECT_EQ(order, (Names{"setup", "build / compile", "build / test", "build", "publish"}));
}

TEST(WorkflowCallExpand, CallerMatrixMakesOneCopyPerCombination) {
  Repository repo;
  repo.add("ci.yml", R"(on: push
jobs:
  build:
    strategy:
      matrix:
        os: [linux, bsd]
    uses: ./.github/workflows/build.yml
    with: {target: "${{ matrix.os }}"}
)");
  repo.add(".github/workflows/build.yml", kBuildWorkflow);
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  auto plan = Plan::build(*workflow);
  ASSERT_TRUE(plan);
  Names names;
  for (const auto& job : plan->jobs()) names.push_back(job.name);
  EXPECT_EQ(names, (Names{"build (linux) / compile", "build (linux) / test", "build (bsd) / compile",
                          "build (bsd) / test", "build"}));
  EXPECT_EQ(workflow->find_job("build/1/test")->needs, Names{"build/1/compile"});
  EXPECT_EQ(workflow->find_job("build/1/compile")->frame->matrix, json({{"os", "bsd"}}));
}

TEST(WorkflowCallExpand, UnknownAndMissingInputsAndSecrets) {
  Repository repo;
  repo.add("ci.yml", R"(on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    with:
      targte: all
    secrets:
      tokn: x
)");
  repo.add(".github/workflows/build.yml", kBuildWorkflow);
  EXPECT_FALSE(repo.load("ci.yml"));
  auto lines = repo.messages();
  ASSERT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "ci.yml:6:7: job 'build' passes input 'targte', which './.github/workflows/build.yml' does "
                      "not declare (did you mean 'target'?)");
  EXPECT_EQ(lines[1], "ci.yml:4:11: job 'build' does not pass the required input 'target' of "
                      "'./.github/workflows/build.yml'");
  EXPECT_EQ(lines[2], "ci.yml:8:7: job 'build' passes secret 'tokn', which './.github/workflows/build.yml' does "
                      "not declare (did you mean 'token'?)");
}

TEST(WorkflowCallExpand, RequiredSecretMustBePassedUnlessInherited) {
  const char* called = R"(on:
  workflow_call:
    secrets:
      key: {required: true}
jobs:
  a: {steps: [{run: x}]}
)";
  Repository repo;
  repo.add(".github/workflows/sign.yml", called);
  repo.add("ci.yml", "on: push\njobs:\n  sign:\n    uses: ./.github/workflows/sign.yml\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  EXPECT_TRUE(contains(repo.messages(), "ci.yml:4:11: job 'sign' does not pass the required secret 'key'"))
      << ::testing::PrintToString(repo.messages());
  repo.add("ci.yml", "on: push\njobs:\n  sign:\n    uses: ./.github/workflows/sign.yml\n    secrets: inherit\n");
  EXPECT_TRUE(repo.load("ci.yml")) << ::testing::PrintToString(repo.messages());
}

TEST(WorkflowCallExpand, CalledFileMustDeclareWorkflowCall) {
  Repository repo;
  repo.add(".github/workflows/lint.yml", "on: push\njobs:\n  a: {steps: [{run: x}]}\n");
  repo.add("ci.yml", "on: push\njobs:\n  lint:\n    uses: ./.github/workflows/lint.yml\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  EXPECT_EQ(repo.messages(), Names{"ci.yml:4:11: './.github/workflows/lint.yml' is not a reusable workflow: its "
                                   "'on' does not list workflow_call"});
}

TEST(WorkflowCallExpand, MissingFileAndErrorsInsideTheCalledFile) {
  Repository repo;
  repo.add("ci.yml", "on: push\njobs:\n  lint:\n    uses: ./.github/workflows/lint.yml\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  EXPECT_EQ(repo.messages(),
            Names{"ci.yml:4:11: cannot read reusable workflow './.github/workflows/lint.yml': no such file"});
  repo.add(".github/workflows/lint.yml", "on: workflow_call\njobs:\n  a: {stepz: [{run: x}]}\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  auto lines = repo.messages();
  EXPECT_TRUE(contains(lines, ".github/workflows/lint.yml:3:7: unknown key 'stepz'")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(contains(lines, "ci.yml:4:11: reusable workflow './.github/workflows/lint.yml' has errors"));
}

TEST(WorkflowCallExpand, CycleIsNamedWithItsChain) {
  Repository repo;
  repo.add("ci.yml", "on: push\njobs:\n  a:\n    uses: ./.github/workflows/a.yml\n");
  repo.add(".github/workflows/a.yml", "on: workflow_call\njobs:\n  b:\n    uses: ./.github/workflows/b.yml\n");
  repo.add(".github/workflows/b.yml", "on: workflow_call\njobs:\n  a:\n    uses: ./.github/workflows/a.yml\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  EXPECT_TRUE(contains(repo.messages(),
                       ".github/workflows/b.yml:4:11: reusable workflows call each other in a cycle: ci.yml -> "
                       ".github/workflows/a.yml -> .github/workflows/b.yml -> .github/workflows/a.yml"))
      << ::testing::PrintToString(repo.messages());
}

TEST(WorkflowCallExpand, NestingStopsAtFourLevels) {
  Repository repo;
  repo.add("ci.yml", "on: push\njobs:\n  l1:\n    uses: ./.github/workflows/l1.yml\n");
  for (int level = 1; level <= 4; ++level)
    repo.add(".github/workflows/l" + std::to_string(level) + ".yml",
             "on: workflow_call\njobs:\n  l" + std::to_string(level + 1) + ":\n    uses: ./.github/workflows/l" +
                 std::to_string(level + 1) + ".yml\n");
  repo.add(".github/workflows/l5.yml", "on: workflow_call\njobs:\n  leaf: {steps: [{run: x}]}\n");
  EXPECT_FALSE(repo.load("ci.yml"));
  EXPECT_TRUE(contains(repo.messages(), "reusable workflows nest at most 4 levels deep (as on GitHub): ci.yml -> "
                                        ".github/workflows/l1.yml -> .github/workflows/l2.yml -> "
                                        ".github/workflows/l3.yml -> .github/workflows/l4.yml"))
      << ::testing::PrintToString(repo.messages());

  // Three levels below the top workflow are allowed.
  repo.add(".github/workflows/l3.yml", "on: workflow_call\njobs:\n  leaf: {steps: [{run: x}]}\n");
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  ASSERT_TRUE(workflow->find_job("l1/l2/l3/leaf"));
  EXPECT_EQ(workflow->find_job("l1/l2/l3/leaf")->name, "l1 / l2 / l3 / leaf");
  EXPECT_EQ(workflow->find_job("l1/l2/l3/leaf")->frame->caller, "l1/l2/l3");
  EXPECT_EQ(workflow->find_job("l1/l2/l3")->frame->caller, "l1/l2");
  EXPECT_EQ(workflow->find_job("l1")->needs, Names{"l1/l2"});
}

TEST(WorkflowCallExpand, RemoteCallsAreNotedWhenSkippedAndReadOtherwise) {
  Repository repo;
  repo.add("ci.yml", "on: push\njobs:\n  d:\n    uses: acme/pipes/.github/workflows/d.yml@v1\n");
  auto workflow = repo.load("ci.yml", /*skip_remote=*/true);
  ASSERT_TRUE(workflow);
  EXPECT_EQ(repo.messages(), Names{"ci.yml:4:11: reusable workflow 'acme/pipes/.github/workflows/d.yml@v1' was "
                                   "not checked: it is fetched from the actions source when the run starts"});
  EXPECT_TRUE(repo.reads.empty());
  repo.add("acme/pipes/.github/workflows/d.yml", "on: workflow_call\njobs:\n  go: {steps: [{run: x}]}\n");
  workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  EXPECT_TRUE(workflow->find_job("d/go"));
  EXPECT_EQ(repo.reads, Names{"acme/pipes/.github/workflows/d.yml@v1"});
}

// ---- running -----------------------------------------------------------------------

class CallRunTest : public ::testing::Test {
 protected:
  RunReport run(const Workflow& workflow, json secrets = json::object()) {
    workflow_ = std::make_unique<Workflow>(workflow);
    auto plan = Plan::build(*workflow_);
    if (!plan) throw std::runtime_error(plan.error().front().to_string());
    plan_ = std::make_unique<Plan>(std::move(*plan));
    ExecutorOptions options;
    options.context.contexts = {{"github", {{"ref", "refs/heads/main"}}}, {"secrets", secrets},
                                {"inputs", json::object()}};
    executor_ = std::make_unique<Executor>(*plan_, runner_, clock_, options);
    return executor_->run();
  }
  const JobReport& report_of(const RunReport& report, const std::string& name) const {
    for (std::size_t i = 0; i < plan_->size(); ++i)
      if (plan_->concrete(i).name == name) return report.jobs[i];
    throw std::runtime_error("no job " + name);
  }

  FakeClock clock_;
  FakeRunner runner_{clock_};
  std::unique_ptr<Workflow> workflow_;
  std::unique_ptr<Plan> plan_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(CallRunTest, InputsSecretsNeedsAndOutputsCrossTheCall) {
  Repository repo;
  repo.add("ci.yml", kCaller);
  repo.add(".github/workflows/build.yml", kBuildWorkflow);
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  runner_.script("setup", {.outputs = {{"target", "all"}}});
  runner_.script("build / compile", {.outputs = {{"file", "app.bin"}}});
  auto report = run(*workflow, {{"DEPLOY", "s3cret"}, {"OTHER", "not passed"}});
  EXPECT_EQ(report.result, Result::success);
  // The caller runs nothing itself.
  EXPECT_EQ(runner_.started, (Names{"setup", "build / compile", "build / test", "publish"}));

  const json& compile = runner_.contexts.at("build / compile");
  EXPECT_EQ(compile["inputs"], json({{"target", "all"}, {"optimize", true}, {"jobs", 2}}));
  EXPECT_EQ(compile["secrets"], json({{"token", "s3cret"}}));
  EXPECT_EQ(compile["needs"], json::object());  // setup is the caller's need, not the called job's
  const json& test = runner_.contexts.at("build / test");
  EXPECT_EQ(test["needs"]["compile"]["outputs"]["file"], "app.bin");
  const json& publish = runner_.contexts.at("publish");
  EXPECT_EQ(publish["needs"]["build"]["result"], "success");
  EXPECT_EQ(publish["needs"]["build"]["outputs"], json({{"artifact", "app.bin"}}));
  EXPECT_EQ(report_of(report, "build").result, Result::success);
  // The called workflow's env and defaults travel with its jobs.
  EXPECT_EQ(runner_.jobs.at("build / test").scope->env, (StringMap{{"FROM", "called"}}));
}

TEST_F(CallRunTest, SecretsInheritPassesEverySecret) {
  Repository repo;
  repo.add(".github/workflows/w.yml", "on: workflow_call\njobs:\n  a: {steps: [{run: x}]}\n");
  repo.add("ci.yml", "on: push\njobs:\n  c:\n    uses: ./.github/workflows/w.yml\n    secrets: inherit\n"
                     "  d:\n    uses: ./.github/workflows/w.yml\n");
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  run(*workflow, {{"A", "1"}, {"B", "2"}});
  EXPECT_EQ(runner_.contexts.at("c / a")["secrets"], json({{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(runner_.contexts.at("d / a")["secrets"], json::object());
}

TEST_F(CallRunTest, FailedCalledJobFailsTheCallerAndSkipsItsDependents) {
  Repository repo;
  repo.add("ci.yml", kCaller);
  repo.add(".github/workflows/build.yml", kBuildWorkflow);
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow);
  runner_.script("build / compile", {.result = Result::failure});
  auto report = run(*workflow);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_EQ(report_of(report, "build / test").result, Result::skipped);
  EXPECT_EQ(report_of(report, "build").result, Result::failure);
  EXPECT_EQ(report_of(report, "publish").result, Result::skipped);
}

TEST_F(CallRunTest, CallerConditionDecidesForTheCalledJobs) {
  Repository repo;
  repo.add(".github/workflows/w.yml", "on: workflow_call\njobs:\n  a: {steps: [{run: x}]}\n  b:\n    needs: a\n"
                                      "    if: always()\n    steps: [{run: x}]\n");
  repo.add("ci.yml", R"(on: push
jobs:
  first: {steps: [{run: x}]}
  never:
    if: github.ref == 'refs/heads/other'
    uses: ./.github/workflows/w.yml
  after-failure:
    needs: first
    if: always()
    uses: ./.github/workflows/w.yml
  after:
    needs: never
    steps: [{run: x}]
)");
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  runner_.script("first", {.result = Result::failure});
  auto report = run(*workflow);
  EXPECT_EQ(report_of(report, "never / a").result, Result::skipped);
  EXPECT_EQ(report_of(report, "never / b").result, Result::skipped);
  EXPECT_EQ(report_of(report, "never").result, Result::skipped);
  EXPECT_EQ(report_of(report, "after").result, Result::skipped);
  // always() on the caller runs the called jobs although its need failed.
  EXPECT_EQ(report_of(report, "after-failure / a").result, Result::success);
  EXPECT_EQ(report_of(report, "after-failure / b").result, Result::success);
}

TEST_F(CallRunTest, BadInputValueFailsTheCalledJobsWithTheReason) {
  Repository repo;
  repo.add(".github/workflows/w.yml", R"(on:
  workflow_call:
    inputs:
      n: {type: number, required: true}
jobs:
  a: {steps: [{run: x}]}
)");
  repo.add("ci.yml", "on: push\njobs:\n  c:\n    uses: ./.github/workflows/w.yml\n    with: {n: lots}\n");
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  auto report = run(*workflow);
  EXPECT_EQ(report_of(report, "c / a").result, Result::failure);
  EXPECT_EQ(report_of(report, "c / a").message, "calling .github/workflows/w.yml: input 'n' is a number, not 'lots'");
  EXPECT_TRUE(runner_.started.empty());
}

TEST_F(CallRunTest, CallerMatrixPassesEachCombination) {
  Repository repo;
  repo.add(".github/workflows/w.yml", R"(on:
  workflow_call:
    inputs:
      os: {type: string}
    outputs:
      seen: {value: "${{ jobs.a.outputs.os }}"}
jobs:
  a:
    outputs: {os: "${{ steps.x.outputs.os }}"}
    steps: [{id: x, run: x}]
)");
  repo.add("ci.yml", R"(on: push
jobs:
  c:
    strategy: {matrix: {os: [linux, bsd]}}
    uses: ./.github/workflows/w.yml
    with: {os: "${{ matrix.os }}"}
  after:
    needs: c
    steps: [{run: x}]
)");
  auto workflow = repo.load("ci.yml");
  ASSERT_TRUE(workflow) << ::testing::PrintToString(repo.messages());
  runner_.script("c (linux) / a", {.outputs = {{"os", "linux"}}});
  runner_.script("c (bsd) / a", {.outputs = {{"os", "bsd"}}});
  run(*workflow);
  EXPECT_EQ(runner_.contexts.at("c (linux) / a")["inputs"]["os"], "linux");
  EXPECT_EQ(runner_.contexts.at("c (bsd) / a")["inputs"]["os"], "bsd");
  EXPECT_EQ(runner_.contexts.at("after")["needs"]["c"]["outputs"]["seen"], "bsd");  // the last copy wins
}

// ---- expressions in place of values ------------------------------------------------

TEST_F(CallRunTest, EnvAndTimeoutExpressionsAreEvaluatedWhenTheJobStarts) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  build:
    name: build-${{ matrix.platform.name }}
    strategy:
      matrix:
        platform:
          - {name: a, env: {CC: gcc, LEVEL: 2}, minutes: 7}
    env: ${{ matrix.platform.env }}
    timeout-minutes: ${{ matrix.platform.minutes }}
    runs-on: ${{ matrix.platform.name }}
    continue-on-error: ${{ matrix.platform.name == 'a' }}
    steps:
      - env: ${{ matrix.platform.env }}
        timeout-minutes: ${{ matrix.platform.minutes }}
        run: make
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  EXPECT_EQ(workflow->jobs[0].env_expression, "${{ matrix.platform.env }}");
  EXPECT_EQ(workflow->jobs[0].timeout_expression, "${{ matrix.platform.minutes }}");
  runner_.script("build-a", {.result = Result::failure});
  auto report = run(*workflow);
  const Job& given = runner_.jobs.at("build-a");
  EXPECT_EQ(given.env, (StringMap{{"CC", "gcc"}, {"LEVEL", "2"}}));
  EXPECT_EQ(given.steps[0].env, (StringMap{{"CC", "gcc"}, {"LEVEL", "2"}}));
  EXPECT_EQ(*given.steps[0].timeout_minutes, 7);
  EXPECT_EQ(runner_.timeouts.at("build-a"), std::chrono::minutes(7));
  EXPECT_TRUE(report_of(report, "build-a").continued_on_error);
}

TEST_F(CallRunTest, EnvExpressionThatIsNoMappingFailsTheJob) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow("on: push\njobs:\n  a:\n    env: ${{ github.ref }}\n    steps: [{run: x}]\n",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow);
  auto report = run(*workflow);
  EXPECT_EQ(report.jobs[0].result, Result::failure);
  EXPECT_EQ(report.jobs[0].message,
            "env: 'env: ${{ github.ref }}' must give a mapping of names to values, not refs/heads/main");
  EXPECT_TRUE(runner_.started.empty());
}

TEST(MatrixExpressions, ResolvedWhenPlannedFromKnownContexts) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  a:
    strategy:
      matrix: ${{ fromJSON(vars.MATRIX) }}
    steps: [{run: x}]
  b:
    strategy:
      matrix:
        os: ${{ fromJSON(vars.OSES) }}
        node: [20]
    steps: [{run: x}]
  c:
    strategy:
      matrix:
        os: ${{ fromJSON(needs.a.outputs.list) }}
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  EvalContext ctx;
  ctx.contexts["vars"] = {{"MATRIX", R"({"os": ["linux"], "include": [{"os": "bsd", "extra": 1}]})"},
                          {"OSES", R"(["x", "y"])"}};
  EXPECT_TRUE(resolve_planned_matrices(*workflow, ctx).empty());
  auto plan = Plan::build(*workflow);
  ASSERT_TRUE(plan);
  Names names;
  for (const auto& job : plan->jobs()) names.push_back(job.name);
  EXPECT_EQ(names, (Names{"a (linux)", "a (bsd, 1)", "b (x, 20)", "b (y, 20)", "c (matrix)"}));
}

// `include: ${{ fromJson(...) }}` as psf/black's CI writes it.
TEST(MatrixExpressions, IncludeAndExcludeMayBeExpressions) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  a:
    strategy:
      matrix:
        py: ['3.11', '3.12']
        include: ${{ fromJson(vars.EXTRA) }}
        exclude: ${{ fromJson(vars.SKIP) }}
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  EvalContext ctx;
  ctx.contexts["vars"] = {{"EXTRA", R"([{"py": "3.13", "dev": true}])"}, {"SKIP", R"([{"py": "3.11"}])"}};
  EXPECT_TRUE(resolve_planned_matrices(*workflow, ctx).empty());
  auto plan = Plan::build(*workflow);
  ASSERT_TRUE(plan);
  Names names;
  for (const auto& job : plan->jobs()) names.push_back(job.name);
  EXPECT_EQ(names, (Names{"a (3.12)", "a (3.13, true)"}));
  EvalContext bad;
  bad.contexts["vars"] = {{"EXTRA", "[1]"}};
  auto again = parse_workflow("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        include: "
                              "${{ fromJson(vars.EXTRA) }}\n    steps: [{run: x}]\n",
                              "ci.yml", diagnostics);
  ASSERT_TRUE(again);
  auto errors = lines_of(resolve_planned_matrices(*again, bad));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("each entry of matrix 'include' must be a mapping"), std::string::npos) << errors[0];
}

TEST(MatrixExpressions, WrongShapesAreErrorsNamingTheJob) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  a:
    strategy:
      matrix: ${{ fromJSON('[1, 2]') }}
    steps: [{run: x}]
  b:
    strategy:
      matrix:
        os: ${{ fromJSON('[]') }}
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow);
  auto errors = lines_of(resolve_planned_matrices(*workflow, EvalContext{}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "ci.yml:3:3: job 'a': 'matrix: ${{ fromJSON('[1, 2]') }}' must give a mapping of "
                       "dimensions, not [1,2]");
  EXPECT_EQ(errors[1], "ci.yml:7:3: job 'b': matrix dimension 'os' must not be empty");
}

TEST_F(CallRunTest, MatrixNeedingJobOutputsGrowsOnceTheyAreKnown) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  setup: {steps: [{run: x}]}
  test:
    needs: setup
    strategy:
      matrix:
        os: ${{ fromJSON(needs.setup.outputs.list) }}
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow);
  runner_.script("setup", {.outputs = {{"list", R"(["a","b"])"}}});
  auto report = run(*workflow);
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::success);
  EXPECT_EQ(runner_.started, (Names{"setup", "test (a)", "test (b)"}));
}

// ---- containers ----------------------------------------------------------------------

TEST(ContainerOptions, SandboxBreakingOptionsAreErrorsAndHarmlessOnesNotes) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  a:
    container:
      image: debian:12
      options: --init --cpus 2 --privileged -v /var/run/docker.sock:/var/run/docker.sock --network=host
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  EXPECT_FALSE(workflow);
  auto lines = lines_of(diagnostics);
  EXPECT_EQ(lines, (Names{
                       "ci.yml:6:16: container option '--init' is ignored: every job already has an init process "
                       "in its sandbox",
                       "ci.yml:6:16: container option '--cpus' is ignored: the agent's limits (resources in its "
                       "configuration) apply",
                       "ci.yml:6:16: container option '--privileged' is not supported by sandci: a job never gets "
                       "more privileges than its gVisor sandbox gives",
                       "ci.yml:6:16: container option '-v' is not supported by sandci: a job sees only its "
                       "checkout, never a folder of the host",
                       "ci.yml:6:16: container option '--network' is not supported by sandci: jobs have no network",
                   }));
}

TEST(ContainerOptions, ImageStringAndExpressionLoad) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(R"(on: push
jobs:
  a:
    container: ${{ matrix.image }}
    strategy: {matrix: {image: ["debian:12"]}}
    steps: [{run: x}]
  b:
    container: {image: debian:12, options: --user 1000}
    steps: [{run: x}]
)",
                                 "ci.yml", diagnostics);
  ASSERT_TRUE(workflow) << ::testing::PrintToString(lines_of(diagnostics));
  EXPECT_EQ(workflow->jobs[0].container->image, "${{ matrix.image }}");
  EXPECT_EQ(lines_of(diagnostics),
            Names{"ci.yml:8:44: container option '--user' is ignored: steps run as the image's user"});
}

TEST(ContainerOptions, ServicesAreRefusedWithTheReason) {
  Diagnostics diagnostics;
  parse_workflow("on: push\njobs:\n  a:\n    services:\n      db: {image: postgres}\n    steps: [{run: x}]\n",
                 "ci.yml", diagnostics);
  EXPECT_EQ(lines_of(diagnostics),
            Names{"ci.yml:4:5: 'services' in job 'a' is not supported by sandci: service containers talk to the "
                  "job over a network, and sandci jobs have none"});
}

}  // namespace
}  // namespace sandci::scheduler
