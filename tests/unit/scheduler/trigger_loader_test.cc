// The `on:` forms sandci reads beyond push/pull_request/workflow_dispatch:
// schedule (cron lines, with errors at file:line:col), pull_request_target and a
// reusable workflow's workflow_call interface.
#include <gtest/gtest.h>

#include "scheduler/workflow_loader.h"

namespace sandci::scheduler {
namespace {

struct Parsed {
  std::optional<Workflow> workflow;
  std::vector<std::string> lines;  // "ci.yml:line:col: severity: message"
};

Parsed parse(const std::string& yaml) {
  Parsed parsed;
  Diagnostics diagnostics;
  parsed.workflow = parse_workflow(yaml, "ci.yml", diagnostics);
  for (const auto& d : diagnostics) parsed.lines.push_back(d.to_string());
  return parsed;
}

const std::string kJobs = "jobs: {a: {steps: [{run: x}]}}\n";

void expect_errors(const std::string& yaml, const std::vector<std::string>& errors) {
  auto parsed = parse(yaml);
  EXPECT_FALSE(parsed.workflow.has_value());
  EXPECT_EQ(parsed.lines, errors);
}

// ---- schedule ---------------------------------------------------------------------

TEST(ScheduleLoad, NightlyAndWeeklyLines) {
  auto parsed = parse(R"(name: Nightly
on:
  schedule:
    # every night, and Monday noon
    - cron: "17 3 * * *"
    - cron: 0 12 * * mon
  workflow_dispatch:
)" + kJobs);
  ASSERT_TRUE(parsed.workflow) << ::testing::PrintToString(parsed.lines);
  EXPECT_TRUE(parsed.lines.empty()) << ::testing::PrintToString(parsed.lines);
  const auto& crons = parsed.workflow->on.schedule->crons;
  ASSERT_EQ(crons.size(), 2u);
  EXPECT_EQ(crons[0].cron, "17 3 * * *");
  EXPECT_EQ(crons[0].location.line, 5);
  EXPECT_EQ(crons[1].cron, "0 12 * * mon");
  EXPECT_TRUE(crons[1].schedule.fires_at(*parse_utc("2024-09-02T12:00Z")));  // a Monday
}

TEST(ScheduleLoad, BadFieldIsPointedAtInsideTheQuotedLine) {
  expect_errors("on:\n  schedule:\n    - cron: '0 25 * * *'\n" + kJobs,
                {"ci.yml:3:16: error: invalid cron '0 25 * * *': hour field: 25 is out of range (0-23)"});
  expect_errors("on:\n  schedule:\n    - cron: 0 4 * * FUN\n" + kJobs,
                {"ci.yml:3:21: error: invalid cron '0 4 * * FUN': day of week field: 'FUN' is not a number or "
                 "a name (0-7 or SUN-SAT)"});
}

TEST(ScheduleLoad, WrongShapes) {
  expect_errors("on: schedule\n" + kJobs,
                {"ci.yml:1:5: error: 'schedule' needs a list of cron entries, such as:  - cron: '30 4 * * *'"});
  expect_errors("on:\n  schedule:\n    cron: '0 4 * * *'\n" + kJobs,
                {"ci.yml:3:5: error: 'schedule' needs a list of cron entries, such as:  - cron: '30 4 * * *'"});
  expect_errors("on:\n  schedule:\n    - '0 4 * * *'\n" + kJobs,
                {"ci.yml:3:7: error: each 'schedule' entry must be a mapping such as {cron: '30 4 * * *'}, not '0 4 "
                 "* * *'"});
  expect_errors("on:\n  schedule:\n    - crn: '0 4 * * *'\n" + kJobs,
                {"ci.yml:3:7: error: unknown key 'crn' in a 'schedule' entry (did you mean 'cron'?)",
                 "ci.yml:3:7: error: a 'schedule' entry needs 'cron'"});
  expect_errors("on:\n  schedule:\n    - cron: '@daily'\n" + kJobs,
                {"ci.yml:3:14: error: invalid cron '@daily': GitHub takes five cron fields, not '@daily'; write "
                 "'0 0 * * *'"});
}

// ---- pull_request_target ----------------------------------------------------------

TEST(PullRequestTargetLoad, SameFiltersAsPullRequest) {
  auto parsed = parse("on:\n  pull_request_target:\n    types: [opened, labeled]\n    branches: [main]\n" + kJobs);
  ASSERT_TRUE(parsed.workflow) << ::testing::PrintToString(parsed.lines);
  ASSERT_TRUE(parsed.workflow->on.pull_request_target);
  EXPECT_FALSE(parsed.workflow->on.pull_request);
  EXPECT_EQ(parsed.workflow->on.pull_request_target->types, (std::vector<std::string>{"opened", "labeled"}));
  expect_errors("on:\n  pull_request_target:\n    types: [opend]\n" + kJobs,
                {"ci.yml:3:13: error: unknown pull_request_target type 'opend' (did you mean 'opened'?)"});
  expect_errors("on:\n  pull_request_target:\n    tags: [v1]\n" + kJobs,
                {"ci.yml:3:5: error: unknown key 'tags' in 'pull_request_target'"});
}

// ---- workflow_call ----------------------------------------------------------------

TEST(WorkflowCallTriggerLoad, InputsSecretsAndOutputs) {
  auto parsed = parse(R"(on:
  workflow_call:
    inputs:
      target:
        description: What to build
        type: string
        required: true
      debug:
        type: boolean
        default: false
      jobs:
        type: number
        default: ${{ 2 }}
    secrets:
      deploy-key:
        required: true
        description: Key for the deploy host
      token:
    outputs:
      version:
        description: The version built
        value: ${{ jobs.a.outputs.version }}
)" + kJobs);
  ASSERT_TRUE(parsed.workflow) << ::testing::PrintToString(parsed.lines);
  EXPECT_TRUE(parsed.lines.empty()) << ::testing::PrintToString(parsed.lines);
  const auto& call = *parsed.workflow->on.workflow_call;
  ASSERT_EQ(call.inputs.size(), 3u);
  EXPECT_EQ(call.inputs[0].name, "target");
  EXPECT_EQ(call.inputs[0].type, "string");
  EXPECT_TRUE(call.inputs[0].required);
  EXPECT_EQ(call.inputs[0].description, "What to build");
  EXPECT_FALSE(call.inputs[0].default_value);
  EXPECT_EQ(call.inputs[1].default_value, nlohmann::json(false));
  EXPECT_EQ(call.inputs[2].default_value, nlohmann::json("${{ 2 }}"));
  ASSERT_EQ(call.secrets.size(), 2u);
  EXPECT_EQ(call.secrets[0].first, "deploy-key");
  EXPECT_TRUE(call.secrets[0].second);
  EXPECT_EQ(call.secrets[1].first, "token");
  EXPECT_FALSE(call.secrets[1].second);
  ASSERT_EQ(call.outputs.size(), 1u);
  EXPECT_EQ(call.outputs[0].value, "${{ jobs.a.outputs.version }}");
  EXPECT_EQ(call.outputs[0].description, "The version built");
}

TEST(WorkflowCallTriggerLoad, OnlyWorkflowCallIsAValidOnSection) {
  auto parsed = parse("on: workflow_call\n" + kJobs);
  ASSERT_TRUE(parsed.workflow);
  EXPECT_TRUE(parsed.lines.empty()) << ::testing::PrintToString(parsed.lines);
  EXPECT_TRUE(parsed.workflow->on.workflow_call);
}

TEST(WorkflowCallTriggerLoad, Errors) {
  expect_errors("on:\n  workflow_call:\n    inputs:\n      target:\n        required: true\n" + kJobs,
                {"ci.yml:4:7: error: input 'target' of workflow_call needs a 'type' (string, number or boolean)"});
  expect_errors("on:\n  workflow_call:\n    inputs:\n      target:\n        type: choice\n" + kJobs,
                {"ci.yml:5:15: error: unknown input type 'choice' (workflow_call inputs are string, number or boolean)"});
  expect_errors("on:\n  workflow_call:\n    inputs:\n      n: {type: number, default: many}\n" + kJobs,
                {"ci.yml:4:34: error: the default of a number input must be a number"});
  expect_errors("on:\n  workflow_call:\n    outputs:\n      v:\n        description: x\n" + kJobs,
                {"ci.yml:4:7: error: output 'v' needs a 'value', like ${{ jobs.build.outputs.version }}"});
  expect_errors("on:\n  workflow_call:\n    secret:\n      k:\n" + kJobs,
                {"ci.yml:3:5: error: unknown key 'secret' in 'workflow_call' (did you mean 'secrets'?)"});
}

}  // namespace
}  // namespace sandci::scheduler
