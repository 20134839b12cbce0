#include "scheduler/trigger.h"

#include <gtest/gtest.h>

#include "scheduler/workflow_loader.h"

namespace sandci::scheduler {
namespace {

// Builds a workflow from its `on:` section through the real loader.
Workflow workflow_on(const std::string& on_yaml) {
  Diagnostics diagnostics;
  auto workflow = parse_workflow(on_yaml + "jobs: {a: {steps: [{run: x}]}}\n", "t.yml", diagnostics);
  EXPECT_TRUE(diagnostics.empty()) << diagnostics[0].to_string();
  return workflow.value_or(Workflow{});
}

Event push(std::string ref, std::optional<std::vector<std::string>> paths = std::nullopt) {
  return {"push", std::move(ref), "", "", std::move(paths)};
}

Event pull_request(std::string action, std::string base,
                   std::optional<std::vector<std::string>> paths = std::nullopt) {
  return {"pull_request", "refs/pull/1/merge", std::move(base), std::move(action), std::move(paths)};
}

bool runs(const Workflow& w, const Event& e) { return match_trigger(w, e).runs; }

TEST(TriggerPush, NoFiltersRunsForBranchesAndTags) {
  auto w = workflow_on("on: push\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_TRUE(runs(w, push("refs/tags/v1")));
  EXPECT_FALSE(runs(w, pull_request("opened", "main")));
  EXPECT_FALSE(runs(w, {"workflow_dispatch", "refs/heads/main", "", "", {}}));
}

TEST(TriggerPush, BranchFilter) {
  auto w = workflow_on("on:\n  push:\n    branches: [main, 'releases/**']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_TRUE(runs(w, push("refs/heads/releases/1.0/rc")));
  EXPECT_FALSE(runs(w, push("refs/heads/dev")));
  EXPECT_EQ(match_trigger(w, push("refs/heads/dev")).reason,
            "branch 'dev' does not match the 'branches' filter");
}

TEST(TriggerPush, BareRefIsABranch) {
  auto w = workflow_on("on:\n  push:\n    branches: [main]\n");
  EXPECT_TRUE(runs(w, push("main")));
}

TEST(TriggerPush, BranchesIgnore) {
  auto w = workflow_on("on:\n  push:\n    branches-ignore: ['wip/*']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_FALSE(runs(w, push("refs/heads/wip/x")));
  EXPECT_TRUE(runs(w, push("refs/heads/wip/x/y")));  // '*' does not cross '/'
}

TEST(TriggerPush, NegatedBranchPatterns) {
  auto w = workflow_on("on:\n  push:\n    branches: ['releases/**', '!releases/**-alpha']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/releases/2")));
  EXPECT_FALSE(runs(w, push("refs/heads/releases/2-alpha")));
}

TEST(TriggerPush, OnlyBranchFiltersSkipTagPushes) {
  auto w = workflow_on("on:\n  push:\n    branches: ['**']\n");
  EXPECT_FALSE(runs(w, push("refs/tags/v1")));
  EXPECT_EQ(match_trigger(w, push("refs/tags/v1")).reason,
            "only branches are filtered; tag pushes do not run");
}

TEST(TriggerPush, OnlyTagFiltersSkipBranchPushes) {
  auto w = workflow_on("on:\n  push:\n    tags: ['v*']\n");
  EXPECT_TRUE(runs(w, push("refs/tags/v1.2")));
  EXPECT_FALSE(runs(w, push("refs/tags/release-1")));
  EXPECT_FALSE(runs(w, push("refs/heads/main")));
  EXPECT_FALSE(runs(w, push("refs/heads/v1")));
}

TEST(TriggerPush, TagsIgnore) {
  auto w = workflow_on("on:\n  push:\n    tags-ignore: ['*-rc*']\n");
  EXPECT_TRUE(runs(w, push("refs/tags/v1")));
  EXPECT_FALSE(runs(w, push("refs/tags/v1-rc2")));
  EXPECT_FALSE(runs(w, push("refs/heads/main")));
}

TEST(TriggerPush, BranchAndTagFiltersTogether) {
  auto w = workflow_on("on:\n  push:\n    branches: [main]\n    tags: ['v*']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_TRUE(runs(w, push("refs/tags/v2")));
  EXPECT_FALSE(runs(w, push("refs/heads/dev")));
  EXPECT_FALSE(runs(w, push("refs/tags/x")));
}

TEST(TriggerPush, PathsNeedOneMatchingFile) {
  auto w = workflow_on("on:\n  push:\n    paths: ['src/**', '!src/**/*.md']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main", std::vector<std::string>{"README.md", "src/a.cc"})));
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{"README.md"})));
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{"src/doc/x.md"})));
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{})));
  EXPECT_EQ(match_trigger(w, push("refs/heads/main", std::vector<std::string>{"README.md"})).reason,
            "no changed file matches the 'paths' filter");
}

TEST(TriggerPush, UnknownPathsDoNotFilter) {
  auto w = workflow_on("on:\n  push:\n    paths: ['src/**']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main", std::nullopt)));
}

TEST(TriggerPush, PathsIgnoreNeedsOneFileNotIgnored) {
  auto w = workflow_on("on:\n  push:\n    paths-ignore: ['docs/**', '**.md']\n");
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{"docs/a.txt", "x/README.md"})));
  EXPECT_TRUE(runs(w, push("refs/heads/main", std::vector<std::string>{"docs/a.txt", "main.cc"})));
  EXPECT_EQ(match_trigger(w, push("refs/heads/main", std::vector<std::string>{"docs/a"})).reason,
            "every changed file matches the 'paths-ignore' filter");
}

TEST(TriggerPush, PathFiltersAreNotAppliedToTags) {
  auto w = workflow_on("on:\n  push:\n    tags: ['v*']\n    paths: ['src/**']\n");
  EXPECT_TRUE(runs(w, push("refs/tags/v1", std::vector<std::string>{"README.md"})));
}

TEST(TriggerPush, BranchAndPathFiltersMustBothPass) {
  auto w = workflow_on("on:\n  push:\n    branches: [main]\n    paths: ['src/**']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main", std::vector<std::string>{"src/a"})));
  EXPECT_FALSE(runs(w, push("refs/heads/dev", std::vector<std::string>{"src/a"})));
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{"doc/a"})));
}

TEST(TriggerPullRequest, DefaultTypes) {
  auto w = workflow_on("on: pull_request\n");
  EXPECT_TRUE(runs(w, pull_request("opened", "main")));
  EXPECT_TRUE(runs(w, pull_request("synchronize", "main")));
  EXPECT_TRUE(runs(w, pull_request("reopened", "main")));
  EXPECT_FALSE(runs(w, pull_request("closed", "main")));
  EXPECT_FALSE(runs(w, pull_request("labeled", "main")));
  EXPECT_FALSE(runs(w, push("refs/heads/main")));
}

TEST(TriggerPullRequest, ExplicitTypes) {
  auto w = workflow_on("on:\n  pull_request:\n    types: [closed, labeled]\n");
  EXPECT_TRUE(runs(w, pull_request("closed", "main")));
  EXPECT_TRUE(runs(w, pull_request("labeled", "main")));
  EXPECT_FALSE(runs(w, pull_request("opened", "main")));
}

TEST(TriggerPullRequest, BaseBranchFilter) {
  auto w = workflow_on("on:\n  pull_request:\n    branches: [main, 'release/*']\n");
  EXPECT_TRUE(runs(w, pull_request("opened", "main")));
  EXPECT_TRUE(runs(w, pull_request("opened", "refs/heads/release/1")));
  EXPECT_FALSE(runs(w, pull_request("opened", "dev")));
  EXPECT_EQ(match_trigger(w, pull_request("opened", "dev")).reason,
            "base branch 'dev' does not match the 'branches' filter");
}

TEST(TriggerPullRequest, BranchesIgnoreAndPaths) {
  auto w = workflow_on(
      "on:\n  pull_request:\n    branches-ignore: [legacy]\n    paths-ignore: ['docs/**']\n");
  EXPECT_FALSE(runs(w, pull_request("opened", "legacy")));
  EXPECT_FALSE(runs(w, pull_request("opened", "main", std::vector<std::string>{"docs/x"})));
  EXPECT_TRUE(runs(w, pull_request("opened", "main", std::vector<std::string>{"docs/x", "a.c"})));
  EXPECT_TRUE(runs(w, pull_request("opened", "main")));
}

TEST(TriggerDispatch, RunsOnlyWhenDeclared) {
  auto with = workflow_on("on: [push, workflow_dispatch]\n");
  auto without = workflow_on("on: push\n");
  const Event dispatch{"workflow_dispatch", "refs/heads/main", "", "", std::nullopt};
  EXPECT_TRUE(runs(with, dispatch));
  EXPECT_FALSE(runs(without, dispatch));
}

TEST(TriggerOther, UnknownEventNeverRuns) {
  auto w = workflow_on("on: [push, pull_request, workflow_dispatch]\n");
  EXPECT_EQ(match_trigger(w, {"release", "", "", "", {}}).reason,
            "sandci does not run workflows on 'release' events");
  EXPECT_FALSE(runs(w, {"release", "", "", "", {}}));
  EXPECT_EQ(match_trigger(w, {"schedule", "", "", "", {}}).reason, "the workflow does not run on schedule");
}

// ---- tags -------------------------------------------------------------------------

TEST(TriggerTags, TagFiltersMatchTagPushesOnly) {
  auto w = workflow_on("on:\n  push:\n    tags: ['v[0-9]*', '!v*-rc*']\n");
  EXPECT_TRUE(runs(w, push("refs/tags/v1.2.0")));
  EXPECT_FALSE(runs(w, push("refs/tags/v1.2.0-rc1")));
  EXPECT_FALSE(runs(w, push("refs/tags/nightly")));
  EXPECT_EQ(match_trigger(w, push("refs/tags/nightly")).reason, "tag 'nightly' does not match the 'tags' filter");
  // A branch named like a tag pattern is still a branch push.
  EXPECT_FALSE(runs(w, push("refs/heads/v1")));
  EXPECT_EQ(match_trigger(w, push("refs/heads/v1")).reason, "only tags are filtered; branch pushes do not run");
}

TEST(TriggerTags, BranchFiltersNeverMatchTags) {
  auto w = workflow_on("on:\n  push:\n    branches: ['**']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_FALSE(runs(w, push("refs/tags/v1")));
  EXPECT_EQ(match_trigger(w, push("refs/tags/v1")).reason, "only branches are filtered; tag pushes do not run");
  auto ignore = workflow_on("on:\n  push:\n    branches-ignore: [wip]\n");
  EXPECT_FALSE(runs(ignore, push("refs/tags/v1")));
}

TEST(TriggerTags, BothFiltersEachJudgeTheirOwnRefs) {
  auto w = workflow_on("on:\n  push:\n    branches: [main]\n    tags-ignore: ['*-beta']\n");
  EXPECT_TRUE(runs(w, push("refs/heads/main")));
  EXPECT_FALSE(runs(w, push("refs/heads/dev")));
  EXPECT_TRUE(runs(w, push("refs/tags/v2")));
  EXPECT_FALSE(runs(w, push("refs/tags/v2-beta")));
}

TEST(TriggerTags, PathFiltersAreNotAppliedToTags) {
  auto w = workflow_on("on:\n  push:\n    paths: ['src/**']\n");
  EXPECT_TRUE(runs(w, push("refs/tags/v1", std::vector<std::string>{"docs/readme.md"})));
  EXPECT_FALSE(runs(w, push("refs/heads/main", std::vector<std::string>{"docs/readme.md"})));
}

// ---- pull_request_target ----------------------------------------------------------

Event target(std::string action, std::string base) {
  return {"pull_request_target", "refs/heads/" + base, std::move(base), std::move(action), std::nullopt};
}

TEST(TriggerPullRequestTarget, RunsOnlyForItsOwnEvent) {
  auto w = workflow_on("on: pull_request_target\n");
  EXPECT_TRUE(runs(w, target("opened", "main")));
  EXPECT_TRUE(runs(w, target("synchronize", "main")));
  EXPECT_FALSE(runs(w, target("closed", "main")));
  EXPECT_FALSE(runs(w, pull_request("opened", "main")));
  auto plain = workflow_on("on: pull_request\n");
  EXPECT_FALSE(runs(plain, target("opened", "main")));
  EXPECT_EQ(match_trigger(plain, target("opened", "main")).reason,
            "the workflow does not run on pull_request_target");
}

TEST(TriggerPullRequestTarget, FiltersLikePullRequest) {
  auto w = workflow_on(
      "on:\n  pull_request_target:\n    types: [opened, labeled]\n    branches: [main, 'release/*']\n");
  EXPECT_TRUE(runs(w, target("labeled", "release/2")));
  EXPECT_FALSE(runs(w, target("synchronize", "main")));
  EXPECT_EQ(match_trigger(w, target("synchronize", "main")).reason,
            "pull_request_target action 'synchronize' is not one of the listed types");
  EXPECT_FALSE(runs(w, target("opened", "dev")));
  EXPECT_EQ(match_trigger(w, target("opened", "dev")).reason,
            "base branch 'dev' does not match the 'branches' filter");
  EXPECT_EQ(match_trigger(w, target("opened", "main")).reason, "pull_request_target opened against 'main'");
}

// ---- schedule ---------------------------------------------------------------------

Event scheduled(std::string cron) {
  Event e{"schedule", "refs/heads/main", "", "", std::nullopt};
  e.schedule = std::move(cron);
  return e;
}

TEST(TriggerSchedule, RunsForItsOwnCronLines) {
  auto w = workflow_on("on:\n  schedule:\n    - cron: '0 4 * * *'\n    - cron: '30 12 * * MON'\n");
  ASSERT_TRUE(w.on.schedule);
  ASSERT_EQ(w.on.schedule->crons.size(), 2u);
  EXPECT_EQ(w.on.schedule->crons[1].cron, "30 12 * * MON");
  EXPECT_EQ(w.on.schedule->crons[1].location.line, 4);
  EXPECT_TRUE(runs(w, scheduled("0 4 * * *")));
  EXPECT_TRUE(runs(w, scheduled("30 12 * * MON")));
  EXPECT_TRUE(runs(w, scheduled("")));  // any of them
  EXPECT_FALSE(runs(w, scheduled("0 5 * * *")));
  EXPECT_EQ(match_trigger(w, scheduled("0 5 * * *")).reason, "the workflow has no schedule '0 5 * * *'");
  EXPECT_FALSE(runs(w, push("refs/heads/main")));
  EXPECT_FALSE(runs(workflow_on("on: push\n"), scheduled("0 4 * * *")));
}

// ---- workflow_call ----------------------------------------------------------------

TEST(TriggerWorkflowCall, OnlyCalledNeverRunsOnItsOwn) {
  auto w = workflow_on("on: workflow_call\n");
  for (const char* name : {"push", "pull_request", "pull_request_target", "workflow_dispatch", "schedule",
                           "workflow_call"}) {
    SCOPED_TRACE(name);
    Event e{name, "refs/heads/main", "main", "opened", std::nullopt};
    EXPECT_FALSE(runs(w, e));
    EXPECT_EQ(match_trigger(w, e).reason,
              "a reusable workflow (only workflow_call): it runs when another workflow calls it");
  }
  auto both = workflow_on("on: [workflow_call, push]\n");
  EXPECT_TRUE(runs(both, push("refs/heads/main")));
}

TEST(TriggerOther, TriggeredWorkflowsKeepsOrder) {
  std::vector<Workflow> workflows{workflow_on("on: push\n"), workflow_on("on: pull_request\n"),
                                  workflow_on("on:\n  push:\n    branches: [dev]\n"),
                                  workflow_on("on:\n  push:\n    branches: [main]\n")};
  auto chosen = triggered_workflows(workflows, push("refs/heads/main"));
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], &workflows[0]);
  EXPECT_EQ(chosen[1], &workflows[3]);
}

}  // namespace
}  // namespace sandci::scheduler
