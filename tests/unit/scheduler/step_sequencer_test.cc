#include "scheduler/step_sequencer.h"

#include <map>

#include <gtest/gtest.h>

#include "scheduler_fakes.h"

namespace sandci::scheduler {
namespace {

using nlohmann::json;
using testing::make_job;
using Names = std::vector<std::string>;

Step run_step(std::string id, std::string script) {
  Step step;
  step.id = std::move(id);
  step.run = std::move(script);
  return step;
}

// Records every request; each step ends as scripted by its id (success by default).
struct FakeSteps {
  std::map<std::string, StepOutcome> outcomes;
  std::vector<StepRequest> requests;
  std::vector<std::string> ran;

  StepCallback callback() {
    return [this](const StepRequest& request) {
      requests.push_back(request);
      ran.push_back(request.name);
      auto it = outcomes.find(request.step->id);
      return it == outcomes.end() ? StepOutcome{} : it->second;
    };
  }
};

std::vector<std::string> conclusions(const StepsResult& result) {
  std::vector<std::string> out;
  for (const auto& step : result.steps)
    out.push_back(std::string(to_string(step.outcome)) + "/" + std::string(to_string(step.conclusion)));
  return out;
}

TEST(StepSequencer, RunsStepsInOrderAndNamesThem) {
  Job job = make_job("j");
  job.steps = {run_step("a", "make\nmake test"), run_step("b", "echo hi")};
  job.steps[1].name = "Say ${{ env.GREETING }}";
  Step uses;
  uses.uses = "actions/checkout@v4";
  job.steps.push_back(uses);
  EvalContext ctx;
  ctx.contexts["env"] = {{"GREETING", "hello"}};
  FakeSteps fake;
  auto result = run_steps(job, ctx, fake.callback());
  EXPECT_EQ(result.result, Result::success);
  EXPECT_EQ(fake.ran, (Names{"Run make", "Say hello", "Run actions/checkout@v4"}));
}

TEST(StepSequencer, FailureSkipsLaterStepsUnlessTheirIfUsesAStatusFunction) {
  Job job = make_job("j");
  job.steps = {run_step("build", "make"), run_step("test", "make test"),
               run_step("upload", "upload logs"), run_step("report", "report")};
  job.steps[2].if_condition = "${{ always() }}";
  job.steps[3].if_condition = "failure() && steps.build.outcome == 'failure'";
  FakeSteps fake;
  fake.outcomes["build"] = {Result::failure, {}, {}, "exit code 2"};
  auto result = run_steps(job, {}, fake.callback());
  EXPECT_EQ(result.result, Result::failure);
  EXPECT_EQ(fake.ran, (Names{"Run make", "Run upload logs", "Run report"}));
  EXPECT_EQ(conclusions(result), (Names{"failure/failure", "skipped/skipped", "success/success",
                                        "success/success"}));
  EXPECT_EQ(result.steps[0].message, "exit code 2");
}

TEST(StepSequencer, IfFalseSkipsTheStep) {
  Job job = make_job("j");
  job.steps = {run_step("a", "a"), run_step("b", "b")};
  job.steps[0].if_condition = "github.event_name == 'push'";
  EvalContext ctx;
  ctx.contexts["github"] = {{"event_name", "pull_request"}};
  FakeSteps fake;
  auto result = run_steps(job, ctx, fake.callback());
  EXPECT_EQ(result.result, Result::success);
  EXPECT_EQ(fake.ran, (Names{"Run b"}));
  EXPECT_EQ(conclusions(result), (Names{"skipped/skipped", "success/success"}));
}

TEST(StepSequencer, ContinueOnErrorKeepsTheJobGoing) {
  Job job = make_job("j");
  job.steps = {run_step("lint", "lint"), run_step("next", "next"), run_step("check", "check")};
  job.steps[0].continue_on_error = "true";
  job.steps[2].if_condition = "steps.lint.outcome == 'failure' && steps.lint.conclusion == 'success'";
  FakeSteps fake;
  fake.outcomes["lint"] = {Result::failure, {}, {}, "exit code 1"};
  auto result = run_steps(job, {}, fake.callback());
  EXPECT_EQ(result.result, Result::success);
  EXPECT_EQ(fake.ran, (Names{"Run lint", "Run next", "Run check"}));
  EXPECT_EQ(conclusions(result)[0], "failure/success");
}

TEST(StepSequencer, StepOutputsReachLaterStepsAndJobOutputs) {
  Job job = make_job("j");
  job.steps = {run_step("version", "echo v=1.2 >> $GITHUB_OUTPUT"),
               run_step("use", "echo ${{ steps.version.outputs.v }}")};
  job.outputs = {{"version", "${{ steps.version.outputs.v }}"},
                 {"state", "${{ steps.use.conclusion }}"}};
  FakeSteps fake;
  fake.outcomes["version"] = {Result::success, {{"v", "1.2"}}, {}, ""};
  auto result = run_steps(job, {}, fake.callback());
  ASSERT_EQ(fake.requests.size(), 2u);
  EXPECT_EQ(fake.requests[1].run, "echo 1.2");
  EXPECT_EQ(result.outputs, (json{{"version", "1.2"}, {"state", "success"}}));
  EXPECT_TRUE(result.errors.empty());
}

TEST(StepSequencer, EnvCombinesJobEnvGithubEnvUpdatesAndStepEnv) {
  Job job = make_job("j");
  job.steps = {run_step("first", "first"), run_step("second", "second")};
  job.steps[1].env = {{"MODE", "${{ env.FROM_FIRST }}-fast"}};
  EvalContext ctx;
  ctx.contexts["env"] = {{"CI", "true"}};
  FakeSteps fake;
  fake.outcomes["first"] = {Result::success, {}, {{"FROM_FIRST", "x"}}, ""};
  run_steps(job, ctx, fake.callback());
  ASSERT_EQ(fake.requests.size(), 2u);
  EXPECT_EQ(fake.requests[0].env, (StringMap{{"CI", "true"}}));
  EXPECT_EQ(fake.requests[1].env, (StringMap{{"CI", "true"}, {"FROM_FIRST", "x"}, {"MODE", "x-fast"}}));
}

TEST(StepSequencer, TimeoutIsPassedToTheCallbackAndItsFailureCounts) {
  Job job = make_job("j");
  job.steps = {run_step("slow", "sleep 100"), run_step("after", "after")};
  job.steps[0].timeout_minutes = 0.5;
  FakeSteps fake;
  fake.outcomes["slow"] = {Result::failure, {}, {}, "timed out"};
  auto result = run_steps(job, {}, fake.callback());
  ASSERT_TRUE(fake.requests[0].timeout.has_value());
  EXPECT_EQ(fake.requests[0].timeout->count(), 30.0);
  EXPECT_EQ(result.result, Result::failure);
  EXPECT_EQ(fake.ran, (Names{"Run sleep 100"}));
  EXPECT_EQ(result.steps[0].message, "timed out");
}

TEST(StepSequencer, CancellationRunsOnlyAlwaysAndCancelledSteps) {
  Job job = make_job("j");
  job.steps = {run_step("a", "a"), run_step("b", "b"), run_step("c", "c"), run_step("d", "d")};
  job.steps[2].if_condition = "always()";
  job.steps[3].if_condition = "cancelled()";
  FakeSteps fake;
  bool cancelled = false;
  auto callback = [&](const StepRequest& request) {
    cancelled = true;  // the job is told to stop while its first step runs
    return fake.callback()(request);
  };
  StepSequencerOptions options;
  options.cancelled = [&] { return cancelled; };
  auto result = run_steps(job, {}, callback, options);
  EXPECT_EQ(fake.ran, (Names{"Run a", "Run c", "Run d"}));
  EXPECT_EQ(result.result, Result::cancelled);
}

TEST(StepSequencer, BadExpressionFailsTheStepNotTheProcess) {
  Job job = make_job("j");
  job.steps = {run_step("a", "echo ${{ bogus() }}"), run_step("b", "b")};
  FakeSteps fake;
  auto result = run_steps(job, {}, fake.callback());
  EXPECT_TRUE(fake.ran.empty());
  EXPECT_EQ(result.result, Result::failure);
  EXPECT_TRUE(result.steps[0].message.starts_with("run: ")) << result.steps[0].message;
  EXPECT_EQ(conclusions(result), (Names{"failure/failure", "skipped/skipped"}));
}

TEST(StepSequencer, PublishesStepEvents) {
  Job job = make_job("j");
  job.steps = {run_step("a", "a"), run_step("b", "b")};
  job.steps[1].if_condition = "false";
  EventRecorder events;
  testing::FakeClock clock;
  FakeSteps fake;
  StepSequencerOptions options;
  options.observer = &events;
  options.clock = &clock;
  options.job = 7;
  run_steps(job, {}, fake.callback(), options);
  std::vector<std::string> seen;
  for (const auto& e : events.events()) {
    EXPECT_EQ(e.job, 7u);
    seen.push_back(std::string(to_string(e.kind)) + " " + std::to_string(e.step) + " " + e.name +
                   (e.result ? " " + std::string(to_string(*e.result)) : ""));
  }
  EXPECT_EQ(seen, (Names{"step_started 0 Run a", "step_finished 0 Run a success",
                         "step_finished 1 Run b skipped"}));
}

}  // namespace
}  // namespace sandci::scheduler
