#include "scheduler/executor.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "scheduler_fakes.h"

// Scripts use designated initializers and leave the other fields defaulted on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sandci::scheduler {
namespace {

using nlohmann::json;
using testing::at_seconds;
using testing::FakeClock;
using testing::FakeRunner;
using testing::make_job;
using testing::make_matrix_job;
using testing::make_workflow;
using testing::Script;
using Names = std::vector<std::string>;

// One run of a workflow under the fake runner and clock.
class ExecutorTest : public ::testing::Test {
 protected:
  RunReport run(const Workflow& workflow, std::size_t capacity = 1) {
    auto plan = Plan::build(workflow);
    if (!plan) throw std::runtime_error(plan.error().front().to_string());
    plan_ = std::make_unique<Plan>(std::move(*plan));
    ExecutorOptions options;
    options.capacity = capacity;
    executor_ = std::make_unique<Executor>(*plan_, runner_, clock_, options, &events_);
    if (before_run_) before_run_();
    return executor_->run();
  }

  Result result_of(const RunReport& report, const std::string& name) const {
    return report_of(report, name).result;
  }
  const JobReport& report_of(const RunReport& report, const std::string& name) const {
    for (std::size_t i = 0; i < plan_->size(); ++i)
      if (plan_->concrete(i).name == name) return report.jobs[i];
    throw std::runtime_error("no job " + name);
  }

  FakeClock clock_;
  FakeRunner runner_{clock_};
  EventRecorder events_;
  std::unique_ptr<Plan> plan_;
  std::unique_ptr<Executor> executor_;
  std::function<void()> before_run_;
};

TEST_F(ExecutorTest, DiamondRunsEveryJobAfterItsNeeds) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"a"}), make_job("c", {"a"}),
                           make_job("d", {"b", "c"})});
  auto report = run(wf, 4);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(runner_.started, (Names{"a", "b", "c", "d"}));
  EXPECT_EQ(runner_.max_running, 2u);
  EXPECT_EQ(clock_.seconds(), 3.0);  // a, then b and c together, then d
  for (const auto& job : report.jobs) EXPECT_EQ(job.result, Result::success);
}

TEST_F(ExecutorTest, FanOutFanIn) {
  auto wf = make_workflow({make_job("root"), make_job("x1", {"root"}), make_job("x2", {"root"}),
                           make_job("x3", {"root"}), make_job("x4", {"root"}),
                           make_job("sink", {"x1", "x2", "x3", "x4"})});
  runner_.script("x2", {.seconds = 5});
  auto report = run(wf, 3);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(runner_.max_running, 3u);
  EXPECT_EQ(runner_.started.back(), "sink");
  EXPECT_EQ(runner_.finished, (Names{"root", "x1", "x3", "x4", "x2", "sink"}));
  EXPECT_EQ(*report_of(report, "sink").started, at_seconds(6));
}

TEST_F(ExecutorTest, CapacityOneRunsOneJobAtATimeInDeclarationOrder) {
  auto wf = make_workflow({make_job("a"), make_job("b"), make_job("c"), make_job("d")});
  auto report = run(wf, 1);
  EXPECT_EQ(runner_.max_running, 1u);
  EXPECT_EQ(runner_.started, (Names{"a", "b", "c", "d"}));
  EXPECT_EQ(clock_.seconds(), 4.0);
}

TEST_F(ExecutorTest, CapacityNRunsUpToNJobsAtOnce) {
  auto wf = make_workflow({make_job("a"), make_job("b"), make_job("c"), make_job("d"),
                           make_job("e")});
  auto report = run(wf, 3);
  EXPECT_EQ(runner_.max_running, 3u);
  EXPECT_EQ(runner_.started, (Names{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(clock_.seconds(), 2.0);
}

TEST_F(ExecutorTest, CriticalPathStartsFirst) {
  auto wf = make_workflow({make_job("lint"), make_job("docs"), make_job("build"),
                           make_job("test", {"build"}), make_job("deploy", {"test"})});
  run(wf, 1);
  // deploy then weighs as much as lint and docs and is declared after them.
  EXPECT_EQ(runner_.started, (Names{"build", "test", "lint", "docs", "deploy"}));
}

TEST_F(ExecutorTest, LastKnownDurationsDecideTheOrder) {
  auto wf = make_workflow({make_job("quick"), make_job("slow")});
  PlanOptions options;
  options.durations = {{"slow", 600}, {"quick", 5}};
  auto plan = Plan::build(wf, options);
  ASSERT_TRUE(plan.has_value());
  Executor executor(*plan, runner_, clock_, {}, nullptr);
  executor.run();
  EXPECT_EQ(runner_.started, (Names{"slow", "quick"}));
}

TEST_F(ExecutorTest, FailureInTheMiddleSkipsItsDependentsOnly) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"a"}), make_job("c", {"b"}),
                           make_job("d", {"a"}), make_job("e", {"c", "d"})});
  runner_.script("b", {.result = Result::failure, .message = "exit code 1"});
  auto report = run(wf, 2);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_EQ(result_of(report, "a"), Result::success);
  EXPECT_EQ(result_of(report, "b"), Result::failure);
  EXPECT_EQ(report_of(report, "b").message, "exit code 1");
  EXPECT_EQ(result_of(report, "c"), Result::skipped);
  EXPECT_EQ(result_of(report, "d"), Result::success);
  EXPECT_EQ(result_of(report, "e"), Result::skipped);
  EXPECT_EQ(runner_.started, (Names{"a", "b", "d"}));
  EXPECT_FALSE(report_of(report, "c").started.has_value());
}

TEST_F(ExecutorTest, AlwaysCleanupRunsAfterAFailure) {
  Job cleanup = make_job("cleanup", {"build"});
  cleanup.if_condition = "${{ always() }}";
  Job on_failure = make_job("notify", {"build"});
  on_failure.if_condition = "failure()";
  Job on_success = make_job("deploy", {"build"});
  on_success.if_condition = "success()";
  auto wf = make_workflow({make_job("build"), cleanup, on_failure, on_success});
  runner_.script("build", {.result = Result::failure});
  auto report = run(wf, 4);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_EQ(result_of(report, "cleanup"), Result::success);
  EXPECT_EQ(result_of(report, "notify"), Result::success);
  EXPECT_EQ(result_of(report, "deploy"), Result::skipped);
  EXPECT_EQ(runner_.contexts.at("cleanup")["needs"]["build"]["result"], "failure");
}

TEST_F(ExecutorTest, FailureIsSeenThroughASkippedJob) {
  // build fails, test is skipped, report's failure() still sees build's failure.
  Job report_job = make_job("report", {"test"});
  report_job.if_condition = "failure()";
  auto wf = make_workflow({make_job("build"), make_job("test", {"build"}), report_job});
  runner_.script("build", {.result = Result::failure});
  auto report = run(wf);
  EXPECT_EQ(result_of(report, "test"), Result::skipped);
  EXPECT_EQ(result_of(report, "report"), Result::success);
}

TEST_F(ExecutorTest, SkippedNeedSkipsDependentsWithoutStatusFunction) {
  Job b = make_job("b", {"a"});
  b.if_condition = "false";
  Job c = make_job("c", {"b"});
  c.if_condition = "true";
  Job d = make_job("d", {"b"});
  d.if_condition = "always()";
  auto wf = make_workflow({make_job("a"), b, c, d});
  auto report = run(wf);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(result_of(report, "b"), Result::skipped);
  EXPECT_EQ(result_of(report, "c"), Result::skipped);
  EXPECT_EQ(result_of(report, "d"), Result::success);
  EXPECT_EQ(runner_.contexts.at("d")["needs"]["b"]["result"], "skipped");
}

TEST_F(ExecutorTest, ConditionThatCannotBeEvaluatedFailsTheJob) {
  Job a = make_job("a");
  a.if_condition = "bogus()";
  auto wf = make_workflow({a, make_job("b", {"a"})});
  auto report = run(wf);
  EXPECT_EQ(result_of(report, "a"), Result::failure);
  EXPECT_TRUE(report_of(report, "a").message.starts_with("if: ")) << report_of(report, "a").message;
  EXPECT_EQ(result_of(report, "b"), Result::skipped);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_TRUE(runner_.started.empty());
}

TEST_F(ExecutorTest, OutputsFlowToNeeds) {
  Job consumer = make_job("consume", {"produce"});
  consumer.if_condition = "needs.produce.outputs.version == '1.2'";
  Job skipped = make_job("other", {"produce"});
  skipped.if_condition = "needs.produce.outputs.version == '9'";
  auto wf = make_workflow({make_job("produce"), consumer, skipped});
  runner_.script("produce", {.outputs = {{"version", "1.2"}, {"sha", "abc"}}});
  auto report = run(wf);
  EXPECT_EQ(report_of(report, "produce").outputs["sha"], "abc");
  EXPECT_EQ(result_of(report, "consume"), Result::success);
  EXPECT_EQ(result_of(report, "other"), Result::skipped);
  const auto& needs = runner_.contexts.at("consume")["needs"];
  EXPECT_EQ(needs, (json{{"produce", {{"result", "success"},
                                      {"outputs", {{"version", "1.2"}, {"sha", "abc"}}}}}}));
}

TEST_F(ExecutorTest, MatrixOutputsAndContextsReachTheRunner) {
  auto wf = make_workflow({make_matrix_job("build", {{"os", {"linux", "mac"}}}),
                           make_job("ship", {"build"})});
  runner_.script("build (linux)", {.outputs = {{"linux", "1"}}});
  runner_.script("build (mac)", {.outputs = {{"mac", "2"}}});
  auto report = run(wf, 2);
  const auto& mac = runner_.contexts.at("build (mac)");
  EXPECT_EQ(mac["matrix"], (json{{"os", "mac"}}));
  EXPECT_EQ(mac["strategy"]["job-index"], 1);
  EXPECT_EQ(mac["strategy"]["job-total"], 2);
  EXPECT_EQ(runner_.contexts.at("ship")["needs"]["build"]["outputs"],
            (json{{"linux", "1"}, {"mac", "2"}}));
  EXPECT_EQ(report.result, Result::success);
}

TEST_F(ExecutorTest, ContinueOnErrorCountsAsSuccessForDependentsAndTheRun) {
  Job flaky = make_job("flaky");
  flaky.continue_on_error = "true";
  auto wf = make_workflow({flaky, make_job("after", {"flaky"})});
  runner_.script("flaky", {.result = Result::failure});
  auto report = run(wf);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(result_of(report, "flaky"), Result::failure);
  EXPECT_TRUE(report_of(report, "flaky").continued_on_error);
  EXPECT_EQ(result_of(report, "after"), Result::success);
  EXPECT_EQ(runner_.contexts.at("after")["needs"]["flaky"]["result"], "success");
}

TEST_F(ExecutorTest, ContinueOnErrorFromTheMatrixKeepsFailFastQuiet) {
  Job test = make_matrix_job("test", {{"v", {"stable", "nightly"}}});
  test.strategy->matrix.include = {json{{"v", "nightly"}, {"experimental", true}}};
  test.continue_on_error = "${{ matrix.experimental == true }}";
  auto wf = make_workflow({test});
  runner_.script("test (nightly, true)", {.seconds = 1, .result = Result::failure});
  runner_.script("test (stable)", {.seconds = 5});
  auto report = run(wf, 2);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(result_of(report, "test (stable)"), Result::success);
  EXPECT_TRUE(report_of(report, "test (nightly, true)").continued_on_error);
  EXPECT_TRUE(runner_.stopped.empty());
}

TEST_F(ExecutorTest, MatrixFailFastCancelsRunningAndPendingSiblings) {
  auto wf = make_workflow({make_matrix_job("t", {{"n", {1, 2, 3, 4}}}),
                           make_job("after", {"t"})});
  runner_.script("t (1)", {.seconds = 1, .result = Result::failure});
  runner_.script("t (2)", {.seconds = 10});
  auto report = run(wf, 2);
  EXPECT_EQ(runner_.started, (Names{"t (1)", "t (2)"}));
  EXPECT_EQ(runner_.stopped, (Names{"t (2)"}));
  EXPECT_EQ(result_of(report, "t (1)"), Result::failure);
  EXPECT_EQ(result_of(report, "t (2)"), Result::cancelled);
  EXPECT_EQ(result_of(report, "t (3)"), Result::cancelled);
  EXPECT_EQ(result_of(report, "t (4)"), Result::cancelled);
  EXPECT_EQ(report_of(report, "t (3)").message, "cancelled: another job of the matrix failed");
  EXPECT_EQ(result_of(report, "after"), Result::skipped);
  EXPECT_EQ(report.result, Result::failure);
  EXPECT_EQ(clock_.seconds(), 1.0);
}

TEST_F(ExecutorTest, WithoutFailFastSiblingsRunToTheEnd) {
  Job t = make_matrix_job("t", {{"n", {1, 2, 3}}});
  t.strategy->fail_fast = false;
  auto wf = make_workflow({t});
  runner_.script("t (1)", {.result = Result::failure});
  auto report = run(wf, 1);
  EXPECT_EQ(runner_.started, (Names{"t (1)", "t (2)", "t (3)"}));
  EXPECT_EQ(result_of(report, "t (3)"), Result::success);
  EXPECT_EQ(report.result, Result::failure);
}

TEST_F(ExecutorTest, MaxParallelLimitsOneMatrixButNotOthers) {
  Job t = make_matrix_job("t", {{"n", {1, 2, 3, 4, 5}}});
  t.strategy->max_parallel = 2;
  auto wf = make_workflow({t, make_job("lint"), make_job("docs")});
  auto report = run(wf, 10);
  EXPECT_EQ(report.result, Result::success);
  EXPECT_EQ(runner_.max_running_by_job["t"], 2u);
  EXPECT_EQ(runner_.max_running, 4u);  // two instances plus lint and docs
  EXPECT_EQ(runner_.started.size(), 7u);
  EXPECT_EQ(clock_.seconds(), 3.0);
}

TEST_F(ExecutorTest, TimeoutStopsTheJobAndFailsIt) {
  Job slow = make_job("slow");
  slow.timeout_minutes = 1;
  auto wf = make_workflow({slow, make_job("after", {"slow"}), make_job("other")});
  runner_.script("slow", {.seconds = 3600});
  auto report = run(wf, 2);
  EXPECT_EQ(runner_.stopped, (Names{"slow"}));
  EXPECT_EQ(result_of(report, "slow"), Result::failure);
  EXPECT_EQ(report_of(report, "slow").message, "timed out after 1 minute");
  EXPECT_EQ(*report_of(report, "slow").finished, at_seconds(60));
  EXPECT_EQ(result_of(report, "after"), Result::skipped);
  EXPECT_EQ(result_of(report, "other"), Result::success);
  EXPECT_EQ(report.result, Result::failure);
}

TEST_F(ExecutorTest, RunnerGetsTheTimeout) {
  Job j = make_job("j");
  j.timeout_minutes = 2.5;
  auto wf = make_workflow({j});
  run(wf);
  EXPECT_EQ(runner_.timeouts.at("j"), std::chrono::seconds(150));
}

TEST_F(ExecutorTest, CancellationMidRun) {
  Job cleanup = make_job("cleanup", {"test"});
  cleanup.if_condition = "always()";
  Job if_cancelled = make_job("on-cancel", {"test"});
  if_cancelled.if_condition = "cancelled()";
  auto wf = make_workflow({make_job("build"), make_job("test", {"build"}),
                           make_job("deploy", {"test"}), cleanup, if_cancelled,
                           make_job("lint")});
  runner_.script("test", {.seconds = 100});
  runner_.script("lint", {.seconds = 100});
  runner_.at(50, [this] { executor_->cancel(); });
  auto report = run(wf, 2);
  EXPECT_EQ(report.result, Result::cancelled);
  EXPECT_EQ(result_of(report, "build"), Result::success);
  EXPECT_EQ(result_of(report, "test"), Result::cancelled);
  EXPECT_EQ(result_of(report, "lint"), Result::cancelled);
  EXPECT_EQ(result_of(report, "deploy"), Result::cancelled);
  EXPECT_EQ(result_of(report, "cleanup"), Result::success);
  EXPECT_EQ(result_of(report, "on-cancel"), Result::success);
  EXPECT_EQ(runner_.stopped, (Names{"test", "lint"}));
  EXPECT_EQ(runner_.started, (Names{"build", "lint", "test", "cleanup", "on-cancel"}));
  EXPECT_EQ(runner_.wakes, 1);
  EXPECT_EQ(*report_of(report, "test").finished, at_seconds(50));
}

TEST_F(ExecutorTest, RunningAlwaysJobIsNotStoppedByCancellation) {
  Job keep = make_job("keep");
  keep.if_condition = "always()";
  auto wf = make_workflow({keep, make_job("drop")});
  runner_.script("keep", {.seconds = 10});
  runner_.script("drop", {.seconds = 10});
  runner_.at(5, [this] { executor_->cancel(); });
  auto report = run(wf, 2);
  EXPECT_EQ(runner_.stopped, (Names{"drop"}));
  EXPECT_EQ(result_of(report, "keep"), Result::success);
  EXPECT_EQ(result_of(report, "drop"), Result::cancelled);
  EXPECT_EQ(report.result, Result::cancelled);
}

TEST_F(ExecutorTest, CancelBeforeRunStartsOnlyAlwaysJobs) {
  Job keep = make_job("keep", {"a"});
  keep.if_condition = "always()";
  auto wf = make_workflow({make_job("a"), keep});
  before_run_ = [this] { executor_->cancel(); };
  auto report = run(wf);
  EXPECT_EQ(runner_.started, (Names{"keep"}));
  EXPECT_EQ(result_of(report, "a"), Result::cancelled);
  EXPECT_EQ(report.result, Result::cancelled);
}

// A runner that completes jobs only when told to stop, blocking in wait() on a
// condition variable: cancel() from another thread must wake it.
class BlockingRunner final : public JobRunner {
 public:
  void start(JobRequest request) override {
    std::lock_guard lock(mutex_);
    running_.push_back(request.index);
    started_cv_.notify_all();
  }
  void stop(std::size_t index) override {
    std::lock_guard lock(mutex_);
    stopping_.push_back(index);
  }
  std::optional<JobCompletion> wait(std::optional<Clock::time_point>) override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return woken_ || !stopping_.empty(); });
    woken_ = false;
    if (stopping_.empty()) return std::nullopt;
    JobCompletion completion{stopping_.back(), {Result::cancelled, json::object(), "stopped"}};
    stopping_.pop_back();
    return completion;
  }
  void wake() override {
    std::lock_guard lock(mutex_);
    woken_ = true;
    cv_.notify_all();
  }
  void wait_until_started(std::size_t count) {
    std::unique_lock lock(mutex_);
    started_cv_.wait(lock, [&] { return running_.size() >= count; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_, started_cv_;
  std::vector<std::size_t> running_, stopping_;
  bool woken_ = false;
};

TEST(ExecutorThreads, CancelFromAnotherThreadWakesTheRunner) {
  auto wf = make_workflow({make_job("a"), make_job("b"), make_job("c", {"a"})});
  auto plan = Plan::build(wf);
  ASSERT_TRUE(plan.has_value());
  BlockingRunner runner;
  SteadyClock clock;
  Executor executor(*plan, runner, clock, {.capacity = 2});
  std::thread canceller([&] {
    runner.wait_until_started(2);
    executor.cancel();
  });
  RunReport report = executor.run();
  canceller.join();
  EXPECT_EQ(report.result, Result::cancelled);
  EXPECT_EQ(report.jobs[0].result, Result::cancelled);
  EXPECT_EQ(report.jobs[1].result, Result::cancelled);
  EXPECT_EQ(report.jobs[2].result, Result::cancelled);
  EXPECT_FALSE(report.jobs[2].started.has_value());
}

TEST_F(ExecutorTest, PublishesRunAndJobEventsInOrder) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"a"})});
  runner_.script("a", {.result = Result::failure});
  run(wf);
  std::vector<std::string> seen;
  for (const auto& e : events_.events()) {
    std::string line(to_string(e.kind));
    if (e.job != kNoIndex) line += " " + e.name;
    if (e.result) line += " " + std::string(to_string(*e.result));
    seen.push_back(line);
  }
  EXPECT_EQ(seen, (Names{"run_started", "job_queued a", "job_queued b", "job_started a",
                         "job_finished a failure", "job_finished b skipped",
                         "run_finished failure"}));
}

}  // namespace
}  // namespace sandci::scheduler
