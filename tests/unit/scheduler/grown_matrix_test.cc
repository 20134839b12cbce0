// Matrices computed from the outputs of needed jobs: the plan holds one
// placeholder, and the executor grows the run with one job per combination once
// the needed jobs are done (under the fake runner and clock).
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

const char* kWorkflow = R"(on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix=...' >> "$GITHUB_OUTPUT"
  test:
    needs: setup
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    runs-on: ubuntu-latest
    outputs:
      seen: ${{ steps.s.outputs.seen }}
    steps:
      - run: echo "${{ matrix.os }}"
  report:
    needs: test
    steps: [{run: echo done}]
)";

class GrownMatrixTest : public ::testing::Test {
 protected:
  void load(const std::string& text) {
    Diagnostics diagnostics;
    auto workflow = parse_workflow(text, "ci.yml", diagnostics);
    ASSERT_TRUE(workflow) << diagnostics.front().to_string();
    workflow_ = std::make_unique<Workflow>(std::move(*workflow));
    auto plan = Plan::build(*workflow_);
    ASSERT_TRUE(plan) << plan.error().front().to_string();
    plan_ = std::make_unique<Plan>(std::move(*plan));
  }
  RunReport run(std::size_t capacity = 4) {
    ExecutorOptions options;
    options.capacity = capacity;
    options.context.contexts = {{"github", {{"ref", "refs/heads/main"}}}};
    executor_ = std::make_unique<Executor>(*plan_, runner_, clock_, options, &events_);
    return executor_->run();
  }
  // The matrix `setup` gives, as its output.
  void matrix_is(const std::string& value) { runner_.script("setup", {.outputs = {{"matrix", value}}}); }

  std::string name_of(const RunReport& report, std::size_t i) const {
    return i < plan_->size() ? plan_->concrete(i).name : report.added.at(i - plan_->size()).name;
  }
  const JobReport& report_of(const RunReport& report, const std::string& name) const {
    for (std::size_t i = 0; i < report.jobs.size(); ++i)
      if (name_of(report, i) == name) return report.jobs[i];
    throw std::runtime_error("no job " + name);
  }
  std::vector<RunEvent> events_of(EventKind kind) const {
    std::vector<RunEvent> out;
    for (const auto& event : events_.events())
      if (event.kind == kind) out.push_back(event);
    return out;
  }

  FakeClock clock_;
  FakeRunner runner_{clock_};
  EventRecorder events_;
  std::unique_ptr<Workflow> workflow_;
  std::unique_ptr<Plan> plan_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(GrownMatrixTest, ThePlanHoldsOnePlaceholderAndSaysWhenItsJobsAreKnown) {
  load(kWorkflow);
  std::vector<std::string> names;
  for (const auto& job : plan_->jobs()) names.push_back(job.name);
  EXPECT_EQ(names, (Names{"setup", "test (matrix)", "report"}));
  EXPECT_TRUE(matrix_grows_at_run_time(*workflow_->find_job("test")));
  EXPECT_FALSE(matrix_grows_at_run_time(*workflow_->find_job("setup")));
  EXPECT_EQ(grown_matrix_note(*workflow_->find_job("test")),
            "the matrix of job 'test' is computed while the run goes on: its jobs are known when 'setup' is done");
}

TEST_F(GrownMatrixTest, EachCombinationRunsAndDependentsWaitForAll) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b"],"include":[{"os":"c","extra":1}]})");
  runner_.script("test (b)", {.seconds = 5});
  auto report = run();
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(runner_.started, (Names{"setup", "test (a)", "test (b)", "test (c, 1)", "report"}));
  // report starts only after the slowest instance.
  EXPECT_EQ(runner_.finished.back(), "report");
  EXPECT_EQ(runner_.finished[runner_.finished.size() - 2], "test (b)");

  ASSERT_EQ(report.added.size(), 3u);
  ASSERT_EQ(report.jobs.size(), plan_->size() + 3);
  EXPECT_EQ(report.added[2].matrix, json({{"os", "c"}, {"extra", 1}}));
  EXPECT_EQ(report_of(report, "test (c, 1)").result, Result::success);
  EXPECT_TRUE(report_of(report, "test (matrix)").grown);
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::success);
  // Instances see their combination and the strategy of the grown matrix.
  const json& c = runner_.contexts.at("test (c, 1)");
  EXPECT_EQ(c["matrix"], json({{"os", "c"}, {"extra", 1}}));
  EXPECT_EQ(c["strategy"]["job-index"], 2);
  EXPECT_EQ(c["strategy"]["job-total"], 3);
  EXPECT_EQ(c["needs"]["setup"]["result"], "success");
  EXPECT_EQ(runner_.contexts.at("report")["needs"]["test"]["result"], "success");
}

TEST_F(GrownMatrixTest, WatchersLearnOfEachAddedJobBeforeItIsQueued) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b"]})");
  auto report = run();
  auto added = events_of(EventKind::job_added);
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0].name, "test (a)");
  EXPECT_EQ(added[0].job, plan_->size());
  EXPECT_EQ(added[0].parent, 1u);  // test (matrix)
  EXPECT_EQ(added[1].name, "test (b)");
  EXPECT_EQ(added[1].job, plan_->size() + 1);
  // Every added job is queued, started and finished like a planned one.
  std::size_t queued = 0, finished = 0;
  for (const auto& event : events_.events()) {
    if (event.job != plan_->size() + 1) continue;
    queued += event.kind == EventKind::job_queued;
    finished += event.kind == EventKind::job_finished;
  }
  EXPECT_EQ(queued, 1u);
  EXPECT_EQ(finished, 1u);
  // The placeholder finishes after its instances and before its dependents start.
  std::vector<std::string> order;
  for (const auto& event : events_.events())
    if (event.kind == EventKind::job_finished || event.kind == EventKind::job_started)
      order.push_back(std::string(to_string(event.kind)) + " " + event.name);
  auto at = [&](const std::string& what) { return std::find(order.begin(), order.end(), what) - order.begin(); };
  EXPECT_LT(at("job_finished test (b)"), at("job_finished test (matrix)"));
  EXPECT_LT(at("job_finished test (matrix)"), at("job_started report"));
  EXPECT_EQ(report.result, Result::success);
}

TEST_F(GrownMatrixTest, OutputsOfInstancesMergeForDependents) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b"]})");
  runner_.script("test (a)", {.outputs = {{"seen", "a"}, {"only-a", "1"}}});
  runner_.script("test (b)", {.seconds = 3, .outputs = {{"seen", "b"}}});
  run();
  // Merged in matrix order: the last instance setting a key wins.
  EXPECT_EQ(runner_.contexts.at("report")["needs"]["test"]["outputs"], json({{"seen", "b"}, {"only-a", "1"}}));
}

TEST_F(GrownMatrixTest, OneCombinationGivesItsOutputsAsTheyAre) {
  load(kWorkflow);
  matrix_is(R"({"os":["only"]})");
  runner_.script("test (only)", {.outputs = {{"seen", "x"}}});
  run();
  EXPECT_EQ(runner_.contexts.at("report")["needs"]["test"]["outputs"], json({{"seen", "x"}}));
}

TEST_F(GrownMatrixTest, FailFastCancelsTheOtherGrownInstances) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b","c"]})");
  runner_.script("test (a)", {.seconds = 1, .result = Result::failure});
  runner_.script("test (b)", {.seconds = 10});
  auto report = run(/*capacity=*/2);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_EQ(report_of(report, "test (a)").result, Result::failure);
  EXPECT_EQ(report_of(report, "test (b)").result, Result::cancelled);  // stopped while running
  EXPECT_EQ(report_of(report, "test (c)").result, Result::cancelled);  // never started
  EXPECT_EQ(runner_.stopped, (Names{"test (b)"}));
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::failure);
  EXPECT_EQ(report_of(report, "test (matrix)").message, "1 of 3 jobs of the matrix failed");
  EXPECT_EQ(report_of(report, "report").result, Result::skipped);
}

TEST_F(GrownMatrixTest, MaxParallelAndContinueOnErrorApplyToGrownInstances) {
  std::string text = kWorkflow;
  text.replace(text.find("    strategy:\n"), 14,
               "    continue-on-error: ${{ matrix.os == 'b' }}\n    strategy:\n      max-parallel: 1\n");
  load(text);
  matrix_is(R"({"os":["a","b","c"]})");
  runner_.script("test (b)", {.result = Result::failure});
  auto report = run(/*capacity=*/4);
  EXPECT_EQ(runner_.max_running_by_job.at("test"), 1u);
  EXPECT_EQ(report_of(report, "test (b)").result, Result::failure);
  EXPECT_TRUE(report_of(report, "test (b)").continued_on_error);
  // A failure with continue-on-error cancels no sibling and lets dependents run.
  EXPECT_EQ(report_of(report, "test (c)").result, Result::success);
  EXPECT_EQ(report_of(report, "report").result, Result::success);
  EXPECT_EQ(report.result, Result::success);
}

TEST_F(GrownMatrixTest, AFalseIfSkipsThePlaceholderWithoutGrowing) {
  std::string text = kWorkflow;
  text.replace(text.find("    strategy:\n"), 14, "    if: needs.setup.outputs.matrix == 'none'\n    strategy:\n");
  load(text);
  matrix_is(R"({"os":["a"]})");
  auto report = run();
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::skipped);
  EXPECT_FALSE(report_of(report, "test (matrix)").grown);
  EXPECT_TRUE(report.added.empty());
  EXPECT_EQ(runner_.started, (Names{"setup"}));
}

TEST_F(GrownMatrixTest, AnEmptyMatrixFailsTheJobNamingItAndTheValue) {
  load(kWorkflow);
  matrix_is(R"({"os":["a"],"exclude":[{"os":"a"}]})");
  auto report = run();
  EXPECT_EQ(report.result, Result::failure);
  const JobReport& test = report_of(report, "test (matrix)");
  EXPECT_EQ(test.result, Result::failure);
  EXPECT_EQ(test.message,
            "the matrix of job 'test' is empty: ${{ fromJSON(needs.setup.outputs.matrix) }} gave "
            R"({"exclude":[{"os":"a"}],"os":["a"]}, which leaves no combination to run)");
  EXPECT_TRUE(report.added.empty());
  EXPECT_EQ(report_of(report, "report").result, Result::skipped);
}

TEST_F(GrownMatrixTest, AnEmptyListFailsTheJob) {
  load(kWorkflow);
  matrix_is(R"({"os":[]})");
  auto report = run();
  EXPECT_EQ(report_of(report, "test (matrix)").message,
            "the matrix of job 'test' cannot be computed: matrix 'os' must not be empty");
}

TEST_F(GrownMatrixTest, AMalformedValueFailsTheJobNamingIt) {
  load(kWorkflow);
  matrix_is("not json");
  auto report = run();
  const JobReport& test = report_of(report, "test (matrix)");
  EXPECT_EQ(test.result, Result::failure);
  EXPECT_NE(test.message.find("the matrix of job 'test' cannot be computed: "), std::string::npos) << test.message;
  EXPECT_NE(test.message.find("fromJSON"), std::string::npos) << test.message;

  matrix_is(R"(["a","b"])");
  report = run();
  EXPECT_EQ(report_of(report, "test (matrix)").message,
            "the matrix of job 'test' cannot be computed: 'matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}' "
            R"(must give a mapping of dimensions, not ["a","b"])");
}

TEST_F(GrownMatrixTest, MoreThan256CombinationsIsAnError) {
  load(kWorkflow);
  json values = json::array();
  for (int k = 0; k < 17; ++k) values.push_back(k);
  matrix_is(json({{"x", values}, {"y", values}}).dump());  // 289 combinations
  auto report = run();
  EXPECT_EQ(report_of(report, "test (matrix)").message,
            "the matrix of job 'test' (${{ fromJSON(needs.setup.outputs.matrix) }}): matrix of job 'test' yields "
            "289 jobs; at most 256 are allowed");
  EXPECT_TRUE(runner_.started == Names{"setup"});
}

TEST_F(GrownMatrixTest, ADimensionExpressionReadingNeedsGrowsToo) {
  load(R"(on: push
jobs:
  setup: {steps: [{run: x}]}
  test:
    needs: setup
    strategy:
      matrix:
        os: ${{ fromJSON(needs.setup.outputs.list) }}
        node: [20]
    steps: [{run: x}]
)");
  runner_.script("setup", {.outputs = {{"list", R"(["linux","bsd"])"}}});
  auto report = run();
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(runner_.started, (Names{"setup", "test (linux, 20)", "test (bsd, 20)"}));
}

TEST_F(GrownMatrixTest, CancellingWhileTheNeededJobRunsNeverGrows) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b"]})");
  runner_.script("setup", {.seconds = 10, .outputs = {{"matrix", R"({"os":["a","b"]})"}}});
  runner_.at(2, [this] { executor_->cancel(); });
  auto report = run();
  EXPECT_EQ(report.result, Result::cancelled);
  EXPECT_EQ(report_of(report, "setup").result, Result::cancelled);
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::cancelled);
  EXPECT_EQ(report_of(report, "report").result, Result::cancelled);
  EXPECT_TRUE(report.added.empty());
}

TEST_F(GrownMatrixTest, CancellingWhileInstancesRunCancelsThemAndThePlaceholder) {
  load(kWorkflow);
  matrix_is(R"({"os":["a","b","c"]})");
  runner_.script("test (a)", {.seconds = 10});
  runner_.script("test (b)", {.seconds = 10});
  runner_.at(3, [this] { executor_->cancel(); });
  auto report = run(/*capacity=*/2);
  EXPECT_EQ(report.result, Result::cancelled);
  EXPECT_EQ(report_of(report, "test (a)").result, Result::cancelled);
  EXPECT_EQ(report_of(report, "test (c)").result, Result::cancelled);
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::cancelled);
  EXPECT_EQ(report_of(report, "report").result, Result::cancelled);
  EXPECT_EQ(runner_.started, (Names{"setup", "test (a)", "test (b)"}));
  // Every job of the run ended, the added ones too.
  for (const auto& event : events_of(EventKind::job_queued)) {
    std::size_t ends = 0;
    for (const auto& finished : events_of(EventKind::job_finished)) ends += finished.job == event.job;
    EXPECT_EQ(ends, 1u) << event.name;
  }
}

TEST_F(GrownMatrixTest, AnAlwaysDependentRunsAfterAFailedGrowth) {
  std::string text = kWorkflow;
  text.replace(text.find("  report:\n    needs: test\n"), 26, "  report:\n    needs: test\n    if: always()\n");
  load(text);
  matrix_is("{}");
  auto report = run();
  EXPECT_EQ(report_of(report, "test (matrix)").result, Result::failure);
  EXPECT_EQ(report_of(report, "report").result, Result::success);
  EXPECT_EQ(runner_.contexts.at("report")["needs"]["test"]["result"], "failure");
}

}  // namespace
}  // namespace sandci::scheduler
