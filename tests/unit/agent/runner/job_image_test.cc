// Which image a job runs in, and which jobs have no runner here.
#include "agent/runner/job_image.h"

#include <gtest/gtest.h>

namespace sandci::agent {
namespace {

scheduler::Job job_on(std::vector<std::string> labels) {
  scheduler::Job job;
  job.id = "j";
  job.runs_on = std::move(labels);
  return job;
}

scheduler::EvalContext matrix_context(const std::string& os) {
  scheduler::EvalContext ctx;
  ctx.contexts["matrix"] = {{"os", os}};
  return ctx;
}

TEST(MissingRunner, MacAndWindowsJobsHaveNoRunnerUnlessMapped) {
  const std::map<std::string, std::string> none, mapped{{"macos-latest", "mac-image:1"}};
  EXPECT_EQ(missing_runner(job_on({"macos-latest"}), {}, none), "macos-latest");
  EXPECT_EQ(missing_runner(job_on({"self-hosted", "windows"}), {}, none), "windows");
  EXPECT_EQ(missing_runner(job_on({"macos-latest"}), {}, mapped), std::nullopt);
  EXPECT_EQ(missing_runner(job_on({"ubuntu-latest"}), {}, none), std::nullopt);
  EXPECT_EQ(missing_runner(job_on({"${{ matrix.os }}"}), matrix_context("windows-2022"), none), "windows-2022");
  EXPECT_EQ(missing_runner(job_on({"${{ matrix.os }}"}), matrix_context("ubuntu-22.04"), none), std::nullopt);
}

TEST(MissingRunner, AContainerRunsAnywhere) {
  auto job = job_on({"windows-latest"});
  job.container = scheduler::Container{};
  job.container->image = "debian:12";
  EXPECT_EQ(missing_runner(job, {}, {}), std::nullopt);
}

}  // namespace
}  // namespace sandci::agent
