// Which image a job runs in, and which jobs have no runner here.
#include "agent/runner/job_image.h"

#include <gtest/gtest.h>

#include "scheduler/runs_on_label.h"

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

TEST(MissingRunner, AnotherOsLabelDecidesEvenBesideAMappedOne) {
  const LabelMap labels = with_runner_labels({}, true, "sandci-runner:12");
  EXPECT_EQ(missing_runner(job_on({"self-hosted", "windows"}), {}, labels), "windows");
  EXPECT_EQ(missing_runner(job_on({"self-hosted", "linux", "x64"}), {}, labels, "x86_64"), std::nullopt);
}

TEST(RunsOnArchitecture, LabelsNamingAnArchitectureAreRecognisedInAnyCase) {
  for (const char* label : {"ubuntu-24.04-arm", "ubuntu-22.04-arm", "linux-arm64", "arm64", "ARM64", "aarch64",
                            "linux/arm64", "self-hosted-ARM64", "Linux ARM64"})
    EXPECT_EQ(scheduler::runs_on_architecture(label), "aarch64") << label;
  for (const char* label : {"x64", "X64", "amd64", "linux/amd64", "x86_64"})
    EXPECT_EQ(scheduler::runs_on_architecture(label), "x86_64") << label;
  EXPECT_EQ(scheduler::runs_on_architecture("linux/s390x"), "s390x");
  for (const char* label : {"ubuntu-latest", "ubuntu-24.04", "self-hosted", "linux", "large-runner", "armory"})
    EXPECT_EQ(scheduler::runs_on_architecture(label), std::nullopt) << label;
}

TEST(MissingRunner, ALabelForAnotherArchitectureHasNoRunnerUnlessMappedByName) {
  const LabelMap defaults = with_runner_labels({}, true, "sandci-runner:12");
  EXPECT_EQ(missing_runner(job_on({"ubuntu-24.04-arm"}), {}, defaults, "x86_64"), "ubuntu-24.04-arm");
  EXPECT_EQ(missing_runner(job_on({"self-hosted", "ARM64"}), {}, defaults, "x86_64"), "ARM64");
  EXPECT_EQ(missing_runner(job_on({"${{ matrix.os }}"}), matrix_context("linux/arm64"), defaults, "x86_64"),
            "linux/arm64");
  // On a machine of that architecture they run.
  EXPECT_EQ(missing_runner(job_on({"ubuntu-24.04-arm"}), {}, defaults, "aarch64"), std::nullopt);
  EXPECT_EQ(missing_runner(job_on({"self-hosted", "x64"}), {}, defaults, "aarch64"), "x64");
  // An explicit mapping, or a pattern that names the architecture, runs them here.
  LabelMap mapped = defaults;
  mapped["ubuntu-24.04-arm"] = "arm-emulated:1";
  EXPECT_EQ(missing_runner(job_on({"ubuntu-24.04-arm"}), {}, mapped, "x86_64"), std::nullopt);
  LabelMap pattern = defaults;
  pattern["ubuntu-24.04-arm*"] = "arm-emulated:1";
  EXPECT_EQ(missing_runner(job_on({"ubuntu-24.04-arm"}), {}, pattern, "x86_64"), std::nullopt);
  // A container does not help: its image would be for that architecture too.
  auto job = job_on({"ubuntu-24.04-arm"});
  job.container = scheduler::Container{};
  job.container->image = "debian:12";
  EXPECT_EQ(missing_runner(job, {}, defaults, "x86_64"), "ubuntu-24.04-arm");
}

TEST(NoRunnerReason, NamesTheHostArchitectureForArchitectureLabelsOnly) {
  EXPECT_EQ(no_runner_reason("ubuntu-24.04-arm", "x86_64"),
            "no runner for label 'ubuntu-24.04-arm' (this agent runs x86_64)");
  EXPECT_EQ(no_runner_reason("macos-14-arm64", "x86_64"), "no runner for label 'macos-14-arm64'");
  EXPECT_EQ(missing_runner(job_on({"macos-14-arm64"}), {}, {}, "x86_64"), "macos-14-arm64");
  EXPECT_FALSE(host_architecture().empty());
}

TEST(LabelMap, ExactKeysWinOverPatternsAndLongerPatternsOverShorter) {
  const LabelMap labels{{"ubuntu-*", "runner:12"}, {"ubuntu-22.*", "old-runner:1"}, {"ubuntu-24.04", "noble:1"}};
  EXPECT_EQ(image_for_label(labels, "ubuntu-24.04"), "noble:1");
  EXPECT_EQ(image_for_label(labels, "ubuntu-22.04"), "old-runner:1");
  EXPECT_EQ(image_for_label(labels, "ubuntu-latest"), "runner:12");
  EXPECT_EQ(image_for_label(labels, "debian-latest"), std::nullopt);
}

TEST(LabelMap, RunnerImageTakesUbuntuAndSelfHostedOnlyWhenPresentAndUnconfigured) {
  EXPECT_TRUE(with_runner_labels({}, false, "sandci-runner:12").empty());
  const LabelMap defaults = with_runner_labels({}, true, "sandci-runner:12");
  EXPECT_EQ(image_for_label(defaults, "ubuntu-latest"), "sandci-runner:12");
  EXPECT_EQ(image_for_label(defaults, "self-hosted"), "sandci-runner:12");
  const LabelMap configured = with_runner_labels({{"ubuntu-*", "debian:12"}}, true, "sandci-runner:12");
  EXPECT_EQ(image_for_label(configured, "ubuntu-22.04"), "debian:12");
  EXPECT_EQ(image_for_label(configured, "self-hosted"), "sandci-runner:12");
}

TEST(ChooseImage, UbuntuJobsGetTheRunnerImageAndOthersTheDefault) {
  const LabelMap labels = with_runner_labels({}, true, "sandci-runner:12");
  EXPECT_EQ(choose_image(job_on({"ubuntu-latest"}), {}, "debian:12", labels).value(), "sandci-runner:12");
  EXPECT_EQ(choose_image(job_on({"my-label"}), {}, "debian:12", labels).value(), "debian:12");
  EXPECT_EQ(choose_image(job_on({"${{ matrix.os }}"}), matrix_context("ubuntu-22.04"), "debian:12", labels).value(),
            "sandci-runner:12");
}

}  // namespace
}  // namespace sandci::agent
