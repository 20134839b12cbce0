#include "scheduler/plan.h"

#include <gtest/gtest.h>

#include "scheduler_fakes.h"

namespace sandci::scheduler {
namespace {

using testing::make_job;
using testing::make_matrix_job;
using testing::make_workflow;

Plan build(const Workflow& workflow, PlanOptions options = {}) {
  auto plan = Plan::build(workflow, options);
  if (!plan) {
    ADD_FAILURE() << plan.error().front().to_string();
    std::abort();
  }
  return std::move(*plan);
}

std::vector<std::string> names(const Plan& plan, const std::vector<std::size_t>& indices) {
  std::vector<std::string> out;
  for (std::size_t i : indices) out.push_back(plan.concrete(i).name);
  return out;
}

std::vector<std::vector<std::string>> level_names(const Plan& plan) {
  std::vector<std::vector<std::string>> out;
  for (const auto& level : plan.levels()) out.push_back(names(plan, level));
  return out;
}

std::string first_error(const Workflow& workflow) {
  auto plan = Plan::build(workflow);
  EXPECT_FALSE(plan.has_value());
  return plan ? "" : plan.error().front().to_string();
}

TEST(Plan, DiamondHasThreeLevels) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"a"}), make_job("c", {"a"}),
                           make_job("d", {"b", "c"})});
  Plan plan = build(wf);
  EXPECT_EQ(level_names(plan),
            (std::vector<std::vector<std::string>>{{"a"}, {"b", "c"}, {"d"}}));
  EXPECT_EQ(names(plan, plan.order()), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(names(plan, plan.critical_path()), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(plan.critical_path_weight(), 3.0);
  EXPECT_EQ(plan.priority(0), 3.0);
  EXPECT_EQ(plan.level(3), 2u);
}

TEST(Plan, FanOutFanIn) {
  auto wf = make_workflow({make_job("root"), make_job("x1", {"root"}), make_job("x2", {"root"}),
                           make_job("x3", {"root"}), make_job("sink", {"x1", "x2", "x3"})});
  Plan plan = build(wf);
  EXPECT_EQ(plan.levels().size(), 3u);
  EXPECT_EQ(plan.levels()[1].size(), 3u);
  EXPECT_EQ(std::vector<std::size_t>(plan.dependents(0).begin(), plan.dependents(0).end()),
            (std::vector<std::size_t>{1, 2, 3}));
  EXPECT_EQ(plan.needs(4).size(), 3u);
}

TEST(Plan, ReadyJobsOrderedByCriticalPathThenDeclaration) {
  // "short" is declared first, but "x" heads the longest chain.
  auto wf = make_workflow({make_job("short"), make_job("other"), make_job("x"),
                           make_job("y", {"x"}), make_job("z", {"y"})});
  Plan plan = build(wf);
  EXPECT_EQ(names(plan, plan.levels()[0]), (std::vector<std::string>{"x", "short", "other"}));
  // Once x is done, y still heads the longest path; after y, z ties with the
  // others and comes last by declaration order.
  EXPECT_EQ(names(plan, plan.order()), (std::vector<std::string>{"x", "y", "short", "other", "z"}));
  EXPECT_EQ(names(plan, plan.critical_path()), (std::vector<std::string>{"x", "y", "z"}));
}

TEST(Plan, LastKnownDurationsWeighTheCriticalPath) {
  // By count a -> b is longer; by duration "slow" alone is.
  auto wf = make_workflow({make_job("a"), make_job("b", {"a"}), make_job("slow")});
  PlanOptions options;
  options.durations = {{"a", 10}, {"b", 20}, {"slow", 100}};
  Plan plan = build(wf, options);
  EXPECT_EQ(names(plan, plan.critical_path()), (std::vector<std::string>{"slow"}));
  EXPECT_EQ(plan.critical_path_weight(), 100.0);
  EXPECT_EQ(plan.priority(0), 30.0);
  EXPECT_EQ(names(plan, plan.order()), (std::vector<std::string>{"slow", "a", "b"}));
}

TEST(Plan, DurationsByConcreteNameOverrideTheJobId) {
  auto wf = make_workflow({make_matrix_job("t", {{"os", {"linux", "mac"}}})});
  PlanOptions options;
  options.durations = {{"t", 5}, {"t (mac)", 50}};
  Plan plan = build(wf, options);
  EXPECT_EQ(plan.weight(0), 5.0);
  EXPECT_EQ(plan.weight(1), 50.0);
  EXPECT_EQ(names(plan, plan.order()), (std::vector<std::string>{"t (mac)", "t (linux)"}));
}

TEST(Plan, MatrixDependentsNeedEveryInstance) {
  auto wf = make_workflow({make_matrix_job("build", {{"os", {"linux", "mac", "win"}}}),
                           make_matrix_job("test", {{"n", {1, 2}}}, {"build"})});
  Plan plan = build(wf);
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(std::vector<std::size_t>(plan.needs(3).begin(), plan.needs(3).end()),
            (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(plan.dependents(1).size(), 2u);
  EXPECT_EQ(plan.instances(1).size(), 2u);
  EXPECT_EQ(plan.instances(1).front(), 3u);
  EXPECT_EQ(names(plan, plan.levels()[1]), (std::vector<std::string>{"test (1)", "test (2)"}));
}

TEST(Plan, CycleIsReportedByName) {
  auto wf = make_workflow({make_job("start"), make_job("a", {"c"}), make_job("b", {"a"}),
                           make_job("c", {"b", "start"}), make_job("after", {"c"})});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: jobs need each other in a cycle: a -> c -> b -> a");
}

TEST(Plan, CycleThroughAMatrixIsReportedByName) {
  // With matrices the cycle check runs on the workflow jobs, before expansion.
  auto wf = make_workflow({make_matrix_job("a", {{"os", {"linux", "mac"}}}, {"b"}),
                           make_job("b", {"a"})});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: jobs need each other in a cycle: a -> b -> a");
}

TEST(Plan, SelfNeedIsACycle) {
  auto wf = make_workflow({make_job("a", {"a"})});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: jobs need each other in a cycle: a -> a");
}

TEST(Plan, UnknownNeedIsReported) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"nope"})});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: job 'b' needs unknown job 'nope'");
}

TEST(Plan, DuplicateIdIsReported) {
  auto wf = make_workflow({make_job("a"), make_job("a")});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: duplicate job id 'a'");
}

TEST(Plan, MatrixErrorsAreReported) {
  auto wf = make_workflow({make_matrix_job("a", {{"os", {}}})});
  EXPECT_EQ(first_error(wf), "ci.yml:1:1: error: matrix dimension 'os' of job 'a' has no values");
}

TEST(Plan, RepeatedNeedIsOneEdge) {
  auto wf = make_workflow({make_job("a"), make_job("b", {"a", "a"})});
  Plan plan = build(wf);
  EXPECT_EQ(plan.needs(1).size(), 1u);
}

TEST(Plan, EmptyWorkflowHasAnEmptyPlan) {
  auto wf = make_workflow({});
  Plan plan = build(wf);
  EXPECT_EQ(plan.size(), 0u);
  EXPECT_TRUE(plan.levels().empty());
  EXPECT_TRUE(plan.critical_path().empty());
  EXPECT_EQ(plan.critical_path_weight(), 0.0);
}

}  // namespace
}  // namespace sandci::scheduler
