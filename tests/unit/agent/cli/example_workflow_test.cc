// examples/c-hello's workflow against the scheduler's expression engine: every
// `${{ }}` parses, and the conditions and interpolations the pipeline relies on give
// what its README promises.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "scheduler/expression.h"

namespace sandci::agent {
namespace {

namespace sx = sandci::scheduler;

const std::string kWorkflow =
    std::string(SANDCI_SOURCE_DIR) + "/examples/c-hello/.sandci/workflows/ci.yml";

void collect_scalars(const YAML::Node& node, const std::string& key,
                     std::vector<std::pair<std::string, std::string>>& out) {
  if (node.IsScalar()) out.emplace_back(key, node.Scalar());
  if (node.IsSequence())
    for (const auto& child : node) collect_scalars(child, key, out);
  if (node.IsMap())
    for (const auto& kv : node) collect_scalars(kv.second, kv.first.Scalar(), out);
}

YAML::Node step_named(const YAML::Node& job, const std::string& name) {
  for (const auto& step : job["steps"])
    if (step["name"] && step["name"].Scalar() == name) return step;
  ADD_FAILURE() << "no step named " << name;
  return {};
}

sx::EvalContext needs_context(const std::string& lint, const std::string& build,
                              const std::string& test) {
  sx::EvalContext ctx;
  ctx.contexts["needs"] = {
      {"version", {{"result", "success"}, {"outputs", {{"version", "1.2.0+abc1234"}}}}},
      {"lint", {{"result", lint}, {"outputs", sx::Value::object()}}},
      {"build", {{"result", build}, {"outputs", sx::Value::object()}}},
      {"test", {{"result", test}, {"outputs", sx::Value::object()}}},
  };
  ctx.contexts["matrix"] = {{"opt", "O2"}};
  ctx.status.any_failed = lint == "failure" || build == "failure" || test == "failure";
  return ctx;
}

TEST(ExampleWorkflow, EveryExpressionParses) {
  YAML::Node root = YAML::LoadFile(kWorkflow);
  std::vector<std::pair<std::string, std::string>> scalars;
  collect_scalars(root, "", scalars);
  ASSERT_GT(scalars.size(), 20u);
  for (const auto& [key, text] : scalars) {
    for (const auto& e : sx::check_interpolation(text))
      ADD_FAILURE() << text << ": " << e.to_string();
    if (key == "if") {
      auto parsed = sx::parse_expression(text);
      EXPECT_TRUE(parsed.has_value()) << text;
    }
  }
}

TEST(ExampleWorkflow, FiveJobsInADiamondWithMatrices) {
  YAML::Node jobs = YAML::LoadFile(kWorkflow)["jobs"];
  ASSERT_EQ(jobs.size(), 5u);
  EXPECT_EQ(jobs["lint"]["needs"].Scalar(), "version");
  EXPECT_EQ(jobs["build"]["needs"].Scalar(), "version");
  EXPECT_EQ(jobs["test"]["needs"].size(), 3u);
  EXPECT_EQ(jobs["build"]["strategy"]["matrix"]["opt"].size(), 2u);
  EXPECT_EQ(jobs["test"]["strategy"]["matrix"]["opt"].size(), 2u);
  EXPECT_EQ(jobs["build"]["container"]["image"].Scalar(), "debian-build:12");
  EXPECT_EQ(jobs["report"]["if"].Scalar(), "always()");
}

TEST(ExampleWorkflow, MatrixAndOutputsInterpolate) {
  YAML::Node jobs = YAML::LoadFile(kWorkflow)["jobs"];
  auto ctx = needs_context("success", "success", "success");
  auto compile = sx::interpolate(
      step_named(jobs["build"], "Compile with -${{ matrix.opt }}")["run"].Scalar(), ctx);
  ASSERT_TRUE(compile.has_value());
  EXPECT_EQ(*compile, "make OPT=-O2 VERSION=\"$VERSION\"");
  auto version = sx::interpolate(jobs["build"]["env"]["VERSION"].Scalar(), ctx);
  ASSERT_TRUE(version.has_value());
  EXPECT_EQ(*version, "1.2.0+abc1234");
  // The test job downloads the artifact of its own matrix cell.
  auto name = sx::interpolate(jobs["test"]["steps"][0]["with"]["name"].Scalar(), ctx);
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(*name, "hello-O2");
}

TEST(ExampleWorkflow, ReportRunsAlwaysAndFailsOnlyWhenSomethingFailed) {
  YAML::Node report = YAML::LoadFile(kWorkflow)["jobs"]["report"];
  const std::string fail_if =
      step_named(report, "Fail when an upstream job did not succeed")["if"].Scalar();

  auto green = needs_context("success", "success", "success");
  EXPECT_EQ(sx::evaluate_condition(report["if"].Scalar(), green), true);
  EXPECT_EQ(sx::evaluate_condition(fail_if, green), false);

  // build failed, so test was skipped: the report still runs (always()), and its last
  // step runs and fails the run. The step's condition has no status function, so it
  // is `success() && ...`, and success() looks at the report job's own earlier steps,
  // which passed.
  auto red = needs_context("success", "failure", "skipped");
  EXPECT_EQ(sx::evaluate_condition(report["if"].Scalar(), red), true);
  red.status.any_failed = false;  // within the report job, no earlier step failed
  EXPECT_EQ(sx::evaluate_condition(fail_if, red), true);
}

}  // namespace
}  // namespace sandci::agent
