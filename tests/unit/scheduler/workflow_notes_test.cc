// Keys and events GitHub knows but sandci ignores: accepted, each with a note at
// its key; typos stay errors. Also checks that the key table and the docs agree.
#include <gtest/gtest.h>


#include <filesystem>
#include <fstream>
#include <sstream>

#include "scheduler/trigger.h"
#include "scheduler/workflow_keys.h"
#include "scheduler/workflow_loader.h"
#include "support/temp_dir.h"

namespace sandci::scheduler {
namespace {

struct Parsed {
  std::optional<Workflow> workflow;
  std::vector<std::string> lines;  // each diagnostic as "ci.yml:line:col: severity: message"
  Diagnostics diagnostics;
};

Parsed parse(const std::string& yaml) {
  Parsed parsed;
  parsed.workflow = parse_workflow(yaml, "ci.yml", parsed.diagnostics);
  for (const auto& d : parsed.diagnostics) parsed.lines.push_back(d.to_string());
  return parsed;
}

const std::string kJobs = "jobs: {a: {steps: [{run: x}]}}\n";

// Loads with exactly the given notes (and nothing else).
void expect_notes(const std::string& yaml, const std::vector<std::string>& notes) {
  auto parsed = parse(yaml);
  EXPECT_TRUE(parsed.workflow.has_value()) << ::testing::PrintToString(parsed.lines);
  EXPECT_EQ(parsed.lines, notes);
  for (const auto& d : parsed.diagnostics) EXPECT_EQ(d.severity, Severity::note) << d.to_string();
}

// Fails to load with exactly the given errors.
void expect_errors(const std::string& yaml, const std::vector<std::string>& errors) {
  auto parsed = parse(yaml);
  EXPECT_FALSE(parsed.workflow.has_value());
  EXPECT_EQ(parsed.lines, errors);
}

// ---- ignored keys ------------------------------------------------------------------

TEST(WorkflowNotes, WorkflowPermissionsIsANote) {
  expect_notes("on: push\npermissions: read-all\n" + kJobs,
               {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token"});
  expect_notes("on: push\npermissions:\n  contents: read\n  pull-requests: write\n" + kJobs,
               {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token"});
  expect_notes("on: push\npermissions: {}\n" + kJobs,
               {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token"});
}

TEST(WorkflowNotes, JobPermissionsAndIdTokenAreNotes) {
  expect_notes(R"(on: push
jobs:
  a:
    permissions:
      contents: read
      id-token: write
    steps: [{run: x}]
)",
               {"ci.yml:4:5: note: 'permissions' is ignored: jobs get no GitHub token",
                "ci.yml:6:7: note: 'id-token' is ignored: sandci issues no OIDC tokens"});
}

TEST(WorkflowNotes, PermissionsAreStillChecked) {
  expect_notes("on: push\npermissions:\n  contens: read\n" + kJobs,
                {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token",
                 "ci.yml:3:3: note: permission scope 'contens' is not one sandci knows (did you mean "
                 "'contents'?); ignored like the others"});
  expect_errors("on: push\npermissions:\n  contents: admin\n" + kJobs,
                {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token",
                 "ci.yml:3:13: error: permission 'contents' must be read, write or none, not 'admin'"});
  expect_errors("on: push\npermissions: everything\n" + kJobs,
                {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token",
                 "ci.yml:2:14: error: 'permissions' must be read-all, write-all or a mapping of "
                 "scopes, not 'everything'"});
}

TEST(WorkflowNotes, EnvironmentIsANote) {
  const std::string note =
      "note: 'environment' is ignored: sandci has no deployment environments (no protection "
      "rules, no environment secrets)";
  expect_notes("on: push\njobs:\n  a:\n    environment: production\n    steps: [{run: x}]\n",
               {"ci.yml:4:5: " + note});
  expect_notes(R"(on: push
jobs:
  a:
    environment:
      name: production
      url: https://example.org/${{ github.sha }}
    steps: [{run: x}]
)",
               {"ci.yml:4:5: " + note});
  expect_errors("on: push\njobs:\n  a:\n    environment: {nmae: x}\n    steps: [{run: x}]\n",
                {"ci.yml:4:5: " + note,
                 "ci.yml:4:19: error: unknown key 'nmae' in 'environment' (did you mean 'name'?)"});
}

TEST(WorkflowNotes, JobConcurrencyIsANoteButStillChecked) {
  const std::string note =
      "note: 'concurrency' is ignored: sandci applies concurrency groups to whole workflows, "
      "not to jobs";
  auto parsed = parse(R"(on: push
jobs:
  a:
    concurrency:
      group: deploy-${{ github.ref }}
      cancel-in-progress: true
    steps: [{run: x}]
)");
  ASSERT_TRUE(parsed.workflow.has_value());
  EXPECT_EQ(parsed.lines, std::vector<std::string>{"ci.yml:4:5: " + note});
  EXPECT_FALSE(parsed.workflow->concurrency.has_value());  // not promoted to the workflow
  expect_errors("on: push\njobs:\n  a:\n    concurrency: {cancel-in-progress: true}\n"
                "    steps: [{run: x}]\n",
                {"ci.yml:4:5: " + note, "ci.yml:4:18: error: 'concurrency' needs a 'group'"});
}

TEST(WorkflowNotes, RunNameIsStoredWithoutANote) {
  auto parsed = parse("on: push\nrun-name: Deploy ${{ github.ref_name }}\n" + kJobs);
  ASSERT_TRUE(parsed.workflow.has_value());
  EXPECT_TRUE(parsed.lines.empty()) << ::testing::PrintToString(parsed.lines);
  EXPECT_EQ(parsed.workflow->run_name, "Deploy ${{ github.ref_name }}");
  // Its expressions are checked like any other interpolated string.
  auto bad = parse("on: push\nrun-name: x ${{ github. }}\n" + kJobs);
  EXPECT_FALSE(bad.workflow.has_value());
  ASSERT_EQ(bad.lines.size(), 1u);
  EXPECT_TRUE(bad.lines[0].starts_with("ci.yml:2:")) << bad.lines[0];
  EXPECT_NE(bad.lines[0].find("error: invalid expression"), std::string::npos) << bad.lines[0];
}

TEST(WorkflowNotes, MisspeltIgnoredKeyIsAnErrorThatSuggestsIt) {
  expect_errors("on: push\npermisions: read-all\n" + kJobs,
                {"ci.yml:2:1: error: unknown key 'permisions' in the workflow (did you mean "
                 "'permissions'?)"});
  expect_errors("on: push\njobs:\n  a:\n    enviroment: prod\n    steps: [{run: x}]\n",
                {"ci.yml:4:5: error: unknown key 'enviroment' in job 'a' (did you mean "
                 "'environment'?)"});
}

TEST(WorkflowNotes, NotesDoNotMakeALoadFail) {
  const sandci::testing::TempDir dir("sandci-notes-");
  dir.write(".github/workflows/ci.yml", "on: [push, release]\npermissions: read-all\n" + kJobs);
  auto result = load_workflows(dir.path());
  EXPECT_TRUE(result.ok());
  ASSERT_EQ(result.workflows.size(), 1u);
  ASSERT_EQ(result.diagnostics.size(), 2u);
  EXPECT_EQ(error_count(result.diagnostics), 0u);
  result.diagnostics.push_back({{"x", 1, 1}, "a real error"});
  EXPECT_FALSE(result.ok());
}

// ---- events -----------------------------------------------------------------------

TEST(WorkflowNotes, EveryGithubEventLoadsWithANoteInEachForm) {
  for (const auto& event : workflow_events()) {
    // workflow_call declares a reusable workflow (workflow_calls_test.cc).
    if (event.run_by_sandci || event.name == "workflow_call") continue;
    const std::string name{event.name};
    const std::string never = "note: event '" + name +
                              "' is not run by sandci; sandci never triggers this workflow";
    const std::string alongside =
        "note: event '" + name + "' is not run by sandci; the workflow runs for push";
    SCOPED_TRACE(name);
    expect_notes("on: " + name + "\n" + kJobs, {"ci.yml:1:5: " + never});
    expect_notes("on: [push, " + name + "]\n" + kJobs, {"ci.yml:1:12: " + alongside});
    expect_notes("on:\n  push:\n  " + name + ":\n    types: [created]\n" + kJobs,
                 {"ci.yml:3:3: " + alongside});
  }
}

TEST(WorkflowNotes, ScheduleAndFriendsInARealisticOnSection) {
  auto parsed = parse(R"(on:
  push:
    branches: [main]
  pull_request:
  schedule:
    - cron: '0 4 * * *'
  workflow_call:
    inputs:
      target: {type: string}
  pull_request_target:
    types: [opened]
  merge_group:
jobs: {a: {steps: [{run: x}]}}
)");
  ASSERT_TRUE(parsed.workflow.has_value());
  // schedule, workflow_call and pull_request_target are read; merge_group is not.
  EXPECT_EQ(parsed.lines, (std::vector<std::string>{
                              "ci.yml:12:3: note: event 'merge_group' is not run by sandci; the workflow runs for "
                              "push, pull_request, pull_request_target, schedule"}));
  EXPECT_TRUE(parsed.workflow->on.push.has_value());
  EXPECT_TRUE(parsed.workflow->on.pull_request.has_value());
  EXPECT_TRUE(parsed.workflow->on.schedule.has_value());
  EXPECT_TRUE(parsed.workflow->on.workflow_call.has_value());
  EXPECT_TRUE(parsed.workflow->on.pull_request_target.has_value());
  EXPECT_FALSE(parsed.workflow->on.workflow_dispatch.has_value());
  EXPECT_TRUE(parsed.workflow->on.workflow_call.has_value());
}

TEST(WorkflowNotes, MisspeltEventIsAnErrorWithDidYouMean) {
  expect_errors("on: [push, relase]\n" + kJobs,
                {"ci.yml:1:12: error: unknown event 'relase' (did you mean 'release'?)"});
  expect_errors("on:\n  pull-request:\n" + kJobs,
                {"ci.yml:2:3: error: unknown event 'pull-request' (did you mean 'pull_request'?)"});
  expect_errors("on: cron\n" + kJobs, {"ci.yml:1:5: error: unknown event 'cron'"});
}

TEST(WorkflowNotes, EmptyOnIsStillAnError) {
  expect_errors("on: []\n" + kJobs, {"ci.yml:1:5: error: 'on' must name at least one event"});
  expect_errors("on: {}\n" + kJobs, {"ci.yml:1:5: error: 'on' must name at least one event"});
}

TEST(WorkflowNotes, WorkflowWithOnlyIdleEventsIsNeverTriggered) {
  auto parsed = parse("on: [release, watch]\n" + kJobs);
  ASSERT_TRUE(parsed.workflow.has_value());
  const Workflow& w = *parsed.workflow;
  EXPECT_FALSE(match_trigger(w, {"push", "refs/heads/main", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"push", "refs/tags/v1", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"pull_request", "", "main", "opened", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"workflow_dispatch", "refs/heads/main", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"schedule", "refs/heads/main", "", "", {}}).runs);
}

TEST(WorkflowNotes, TagPushesStillMatchBesideIdleEvents) {
  auto parsed = parse("on:\n  push:\n    tags: ['v*']\n  release:\n    types: [published]\n" + kJobs);
  ASSERT_TRUE(parsed.workflow.has_value());
  const Workflow& w = *parsed.workflow;
  EXPECT_TRUE(match_trigger(w, {"push", "refs/tags/v1.2.0", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"push", "refs/tags/nightly", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(w, {"push", "refs/heads/main", "", "", {}}).runs);
  auto ignore = parse("on:\n  push:\n    tags-ignore: ['*-rc*']\n  schedule:\n    - cron: '1 1 * * *'\n" + kJobs);
  ASSERT_TRUE(ignore.workflow.has_value());
  EXPECT_TRUE(match_trigger(*ignore.workflow, {"push", "refs/tags/v2", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(*ignore.workflow, {"push", "refs/tags/v2-rc1", "", "", {}}).runs);
  // tags-ignore alone is a tag filter: branch pushes do not run.
  EXPECT_FALSE(match_trigger(*ignore.workflow, {"push", "refs/heads/main", "", "", {}}).runs);
}

// `tags: ['!**']` beside `branches:` is how real workflows say "never for tags".
TEST(WorkflowNotes, OnlyNegativePatternsAreANoteAndMatchNothing) {
  auto parsed = parse("on:\n  push:\n    branches: ['**']\n    tags: ['!**']\n" + kJobs);
  ASSERT_TRUE(parsed.workflow.has_value()) << ::testing::PrintToString(parsed.lines);
  EXPECT_EQ(parsed.lines, (std::vector<std::string>{
                              "ci.yml:4:11: note: 'tags' has only '!' patterns, so it matches nothing (to leave "
                              "some out and keep the rest, use 'tags-ignore')"}));
  EXPECT_TRUE(match_trigger(*parsed.workflow, {"push", "refs/heads/feature/x", "", "", {}}).runs);
  EXPECT_FALSE(match_trigger(*parsed.workflow, {"push", "refs/tags/v1.0.0", "", "", {}}).runs);
}

// vim and Vue run their test suites as `- parallel:` groups of steps.
TEST(WorkflowNotes, ParallelStepGroupsRunInFileOrderWithANote) {
  auto parsed = parse(R"(on: push
jobs:
  test:
    steps:
      - run: make
      - parallel:
          - name: unit
            run: make unit
          - name: lint
            if: always()
            run: make lint
      - run: make dist
)");
  ASSERT_TRUE(parsed.workflow.has_value()) << ::testing::PrintToString(parsed.lines);
  EXPECT_EQ(parsed.lines, (std::vector<std::string>{
                              "ci.yml:6:9: note: 'parallel' steps run one after another under sandci, in file order"}));
  const auto& steps = parsed.workflow->jobs[0].steps;
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[1].name, "unit");
  EXPECT_EQ(steps[2].if_condition, "always()");
  EXPECT_EQ(*steps[3].run, "make dist");
  expect_errors("on: push\njobs:\n  a:\n    steps:\n      - parallel: make\n",
                {"ci.yml:5:19: error: 'parallel' must be a list of steps, not 'make'"});
}

// GitHub adds permission scopes over time; a scope sandci does not know is ignored too.
TEST(WorkflowNotes, UnknownPermissionScopeIsANote) {
  expect_notes("on: push\npermissions:\n  artifact-metadata: write\n" + kJobs,
               {"ci.yml:2:1: note: 'permissions' is ignored: jobs get no GitHub token",
                "ci.yml:3:3: note: permission scope 'artifact-metadata' is not one sandci knows; ignored like the "
                "others"});
}

TEST(WorkflowNotes, CancelInProgressMayBeAnExpression) {
  auto parsed = parse("on: push\nconcurrency:\n  group: ci-${{ github.ref }}\n"
                      "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}\n" + kJobs);
  ASSERT_TRUE(parsed.workflow.has_value()) << ::testing::PrintToString(parsed.lines);
  EXPECT_EQ(parsed.workflow->concurrency->cancel_in_progress, "${{ github.event_name == 'pull_request' }}");
  expect_errors("on: push\nconcurrency:\n  group: g\n  cancel-in-progress: sometimes\n" + kJobs,
                {"ci.yml:4:23: error: 'cancel-in-progress' must be true, false or an expression, not 'sometimes'"});
}

// ---- the table and the docs --------------------------------------------------------

TEST(WorkflowKeys, DockerActionsSayWhy) {
  auto parsed = parse("on: push\njobs:\n  a:\n    steps:\n      - uses: docker://alpine:3\n");
  ASSERT_EQ(parsed.lines.size(), 1u);
  EXPECT_NE(parsed.lines[0].find("a docker:// action pulls an image from a registry"), std::string::npos)
      << parsed.lines[0];
}

TEST(WorkflowKeys, RefusedKeysSayWhy) {
  auto parsed = parse("on: push\njobs:\n  a:\n    services: {db: {image: postgres}}\n    steps: [{run: x}]\n");
  ASSERT_EQ(parsed.lines.size(), 1u);
  EXPECT_EQ(parsed.lines[0],
            "ci.yml:4:5: error: 'services' in job 'a' is not supported by sandci: service containers talk to the "
            "job over a network, and sandci jobs have none");
}

// Ignored and refused keys say why (the note or the error quotes it); supported
// keys need no reason.
TEST(WorkflowKeys, IgnoredAndRefusedKeysHaveAReasonAndOthersNone) {
  for (const auto& spec : workflow_keys()) {
    SCOPED_TRACE(std::string{spec.name});
    EXPECT_EQ(spec.support != KeySupport::supported, !spec.reason.empty());
    EXPECT_FALSE(spec.accepts.empty());
    EXPECT_EQ(find_key(spec.place, spec.name), &spec);  // no key listed twice in a place
  }
}

TEST(WorkflowKeys, DocsNameEveryIgnoredAndRefusedKeyAndEveryEvent) {
  std::ifstream in{std::string{SANDCI_SOURCE_DIR} + "/docs/workflow-syntax.md"};
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string docs = text.str();
  for (const auto& spec : workflow_keys()) {
    if (spec.support != KeySupport::supported) {
      EXPECT_NE(docs.find("`" + std::string{spec.name} + "`"), std::string::npos) << spec.name;
    }
  }
  for (const auto& event : workflow_events())
    EXPECT_NE(docs.find("`" + std::string{event.name} + "`"), std::string::npos) << event.name;
}

// A job for macOS or Windows loads with a note: it is skipped at run time unless
// a label map names an image for it.
TEST(WorkflowNotes, RunsOnAnotherOperatingSystem) {
  expect_notes("on: push\njobs:\n  mac:\n    runs-on: macos-latest\n    steps: [{run: x}]\n",
               {"ci.yml:4:14: note: runs-on 'macos-latest': sandci runs Linux jobs; unless the agent's label map "
                "names an image for it, the job is skipped (no runner for that label)"});
  expect_notes("on: push\njobs:\n  a:\n    runs-on: [self-hosted, linux]\n    steps: [{run: x}]\n", {});
  EXPECT_TRUE(names_another_os("Windows-2022"));
  EXPECT_TRUE(names_another_os("macos-14"));
  EXPECT_FALSE(names_another_os("ubuntu-latest"));
  EXPECT_FALSE(names_another_os("${{ matrix.os }}"));
}

}  // namespace
}  // namespace sandci::scheduler
