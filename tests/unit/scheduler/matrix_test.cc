#include "scheduler/matrix.h"

#include <gtest/gtest.h>

#include "scheduler_fakes.h"

namespace sandci::scheduler {
namespace {

using nlohmann::json;
using testing::make_job;
using testing::make_matrix_job;

std::vector<std::string> names(const std::vector<ConcreteJob>& jobs) {
  std::vector<std::string> out;
  for (const auto& job : jobs) out.push_back(job.name);
  return out;
}

std::vector<ConcreteJob> expand(const Job& job, MatrixOptions options = {}) {
  auto jobs = expand_matrix(job, 3, options);
  EXPECT_TRUE(jobs.has_value()) << (jobs ? "" : jobs.error().message);
  return jobs ? *jobs : std::vector<ConcreteJob>{};
}

TEST(Matrix, JobWithoutMatrixIsOneJobNamedByItsId) {
  auto jobs = expand(make_job("build"));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].name, "build");
  EXPECT_EQ(jobs[0].job_index, 3u);
  EXPECT_TRUE(jobs[0].matrix.is_null());
  EXPECT_EQ(jobs[0].matrix_total, 1u);
}

TEST(Matrix, JobWithoutMatrixIsNamedByItsName) {
  Job job = make_job("build");
  job.name = "Build it";
  EXPECT_EQ(names(expand(job)), std::vector<std::string>{"Build it"});
}

TEST(Matrix, ProductListsValuesInDimensionOrderFirstDimensionOutermost) {
  auto jobs = expand(make_matrix_job("build", {{"os", {"linux", "mac"}}, {"node", {18, 20}}}));
  EXPECT_EQ(names(jobs), (std::vector<std::string>{"build (linux, 18)", "build (linux, 20)",
                                                   "build (mac, 18)", "build (mac, 20)"}));
  EXPECT_EQ(jobs[1].matrix, (json{{"os", "linux"}, {"node", 20}}));
  EXPECT_EQ(jobs[3].matrix_index, 3u);
  EXPECT_EQ(jobs[3].matrix_total, 4u);
}

TEST(Matrix, NameUsesTheJobNameAndShowsObjectsAndNonStringsAsJson) {
  Job job = make_matrix_job("test", {{"cfg", {json{{"cc", "gcc"}, {"opt", 2}}}}, {"debug", {true}}});
  job.name = "Test";
  EXPECT_EQ(names(expand(job)),
            std::vector<std::string>{R"(Test ({"cc":"gcc","opt":2}, true))"});
}

TEST(Matrix, NameWithExpressionIsInterpolatedWithoutSuffix) {
  Job job = make_matrix_job("build", {{"os", {"linux", "mac"}}});
  job.name = "Build on ${{ matrix.os }}";
  EXPECT_EQ(names(expand(job)), (std::vector<std::string>{"Build on linux", "Build on mac"}));
}

TEST(Matrix, ExcludeRemovesEveryCombinationItMatches) {
  Job job = make_matrix_job("b", {{"os", {"linux", "mac", "win"}}, {"node", {18, 20}}});
  job.strategy->matrix.exclude = {json{{"os", "win"}}, json{{"os", "mac"}, {"node", 18}}};
  EXPECT_EQ(names(expand(job)),
            (std::vector<std::string>{"b (linux, 18)", "b (linux, 20)", "b (mac, 20)"}));
}

TEST(Matrix, ExcludeIsAppliedBeforeInclude) {
  // The include re-adds the excluded combination as a new one, at the end.
  Job job = make_matrix_job("b", {{"os", {"linux", "mac"}}});
  job.strategy->matrix.exclude = {json{{"os", "mac"}}};
  job.strategy->matrix.include = {json{{"os", "mac"}}};
  EXPECT_EQ(names(expand(job)), (std::vector<std::string>{"b (linux)", "b (mac)"}));
}

TEST(Matrix, IncludeExtendsMatchingCombinationsWithNewKeys) {
  Job job = make_matrix_job("b", {{"os", {"linux", "mac"}}, {"node", {18, 20}}});
  job.strategy->matrix.include = {json{{"os", "linux"}, {"experimental", true}}};
  auto jobs = expand(job);
  EXPECT_EQ(names(jobs), (std::vector<std::string>{"b (linux, 18, true)", "b (linux, 20, true)",
                                                   "b (mac, 18)", "b (mac, 20)"}));
  EXPECT_EQ(jobs[0].matrix["experimental"], true);
  EXPECT_FALSE(jobs[2].matrix.contains("experimental"));
}

TEST(Matrix, IncludeThatMatchesNoCombinationAddsOne) {
  Job job = make_matrix_job("b", {{"os", {"linux"}}, {"node", {18}}});
  job.strategy->matrix.include = {json{{"os", "win"}, {"node", 16}}};
  EXPECT_EQ(names(expand(job)), (std::vector<std::string>{"b (linux, 18)", "b (win, 16)"}));
}

// The example of the Actions documentation ("Expanding or adding matrix configurations").
TEST(Matrix, ActionsDocumentationExample) {
  Job job = make_matrix_job("j", {{"fruit", {"apple", "pear"}}, {"animal", {"cat", "dog"}}});
  job.strategy->matrix.include = {
      json{{"color", "green"}},
      json{{"color", "pink"}, {"animal", "cat"}},
      json{{"fruit", "apple"}, {"shape", "circle"}},
      json{{"fruit", "banana"}},
      json{{"fruit", "banana"}, {"animal", "cat"}},
  };
  auto jobs = expand(job);
  ASSERT_EQ(jobs.size(), 6u);
  EXPECT_EQ(jobs[0].matrix,
            (json{{"fruit", "apple"}, {"animal", "cat"}, {"color", "pink"}, {"shape", "circle"}}));
  EXPECT_EQ(jobs[1].matrix,
            (json{{"fruit", "apple"}, {"animal", "dog"}, {"color", "green"}, {"shape", "circle"}}));
  EXPECT_EQ(jobs[2].matrix, (json{{"fruit", "pear"}, {"animal", "cat"}, {"color", "pink"}}));
  EXPECT_EQ(jobs[3].matrix, (json{{"fruit", "pear"}, {"animal", "dog"}, {"color", "green"}}));
  EXPECT_EQ(jobs[4].matrix, (json{{"fruit", "banana"}}));
  EXPECT_EQ(jobs[5].matrix, (json{{"animal", "cat"}, {"fruit", "banana"}}));
  EXPECT_EQ(jobs[0].name, "j (apple, cat, pink, circle)");
}

TEST(Matrix, IncludeOnlyMatrixMakesOneJobPerEntry) {
  Job job = make_job("b");
  job.strategy.emplace();
  job.strategy->matrix.include = {json{{"os", "linux"}}, json{{"os", "mac"}}};
  EXPECT_EQ(names(expand(job)), (std::vector<std::string>{"b (linux)", "b (mac)"}));
}

TEST(Matrix, EverythingExcludedLeavesNoJobs) {
  Job job = make_matrix_job("b", {{"os", {"linux"}}});
  job.strategy->matrix.exclude = {json{{"os", "linux"}}};
  EXPECT_TRUE(expand(job).empty());
}

TEST(Matrix, EmptyDimensionIsAnError) {
  auto jobs = expand_matrix(make_matrix_job("b", {{"os", {}}}), 0);
  ASSERT_FALSE(jobs.has_value());
  EXPECT_EQ(jobs.error().message, "matrix dimension 'os' of job 'b' has no values");
  EXPECT_EQ(jobs.error().location.file, "ci.yml");
}

TEST(Matrix, MoreJobsThanTheLimitIsAnError) {
  std::vector<json> values;
  for (int i = 0; i < 20; ++i) values.push_back(i);
  Job job = make_matrix_job("b", {{"x", values}, {"y", values}});
  auto jobs = expand_matrix(job, 0);  // 400 > 256
  ASSERT_FALSE(jobs.has_value());
  EXPECT_EQ(jobs.error().message, "matrix of job 'b' yields 400 jobs; at most 256 are allowed");
  EXPECT_EQ(expand(job, MatrixOptions{.max_jobs = 400}).size(), 400u);
}

TEST(Matrix, HugeProductIsRefusedBeforeBuildingIt) {
  std::vector<json> values(1000, 1);
  Job job = make_matrix_job("b", {{"x", values}, {"y", values}, {"z", values}});
  auto jobs = expand_matrix(job, 0);
  ASSERT_FALSE(jobs.has_value());
  EXPECT_EQ(jobs.error().message, "matrix of job 'b' has too many combinations");
}

}  // namespace
}  // namespace sandci::scheduler
