// The action cache's pruning rule, apart from the files: which trees, mirrors and
// half-written trees go, given when each was last used and what unfinished runs use.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/runner/action_cache_pruning.h"

namespace sandci::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::int64_t kDay = 24LL * 3600 * 1000;
constexpr std::int64_t kNow = 1000 * kDay;
constexpr std::int64_t kThirtyDays = 30 * kDay;

const std::string kA(40, 'a'), kB(40, 'b'), kC(40, 'c');

CachedTreeUse tree(std::string owner, std::string repo, std::string commit, std::int64_t used_ms) {
  return {owner, repo, commit, "mirror-" + owner + "-" + repo, used_ms};
}

std::vector<std::string> names(const std::vector<CachedTreeUse>& trees) {
  std::vector<std::string> out;
  for (const auto& t : trees) out.push_back(t.owner + "/" + t.repo + "@" + t.commit.substr(0, 1));
  return out;
}

TEST(PlanActionPruning, RemovesTreesUnusedForTheAgeOnly) {
  ActionCacheContents contents;
  contents.trees = {tree("acme", "greet", kA, kNow - 31 * kDay),       // old
                    tree("acme", "greet", kB, kNow - 29 * kDay),       // recent
                    tree("acme", "lint", kC, kNow - kThirtyDays),      // exactly the age: stays
                    tree("other", "tool", kA, kNow - 400 * kDay)};     // very old
  const auto plan = plan_action_pruning(contents, {}, {}, kThirtyDays, kNow);
  EXPECT_THAT(names(plan.trees), ElementsAre("acme/greet@a", "other/tool@a"));
}

TEST(PlanActionPruning, ATreeOfAnUnfinishedRunStaysHoweverOld) {
  ActionCacheContents contents;
  contents.trees = {tree("acme", "greet", kA, kNow - 90 * kDay), tree("acme", "greet", kB, kNow - 90 * kDay)};
  // Written with other case: forges compare owner/repo without it, and so does the rule.
  const std::vector<ActionUse> in_use = {{"Acme/Greet", std::string(40, 'A'), "mirror-acme-greet"}};
  const auto plan = plan_action_pruning(contents, in_use, {}, kThirtyDays, kNow);
  EXPECT_THAT(names(plan.trees), ElementsAre("acme/greet@b"));
}

TEST(PlanActionPruning, AMirrorStaysWhileATreeOfItStaysOrItWasUsedRecently) {
  ActionCacheContents contents;
  contents.trees = {tree("acme", "greet", kA, kNow - 2 * kDay),  // keeps its mirror
                    tree("acme", "lint", kA, kNow - 60 * kDay)};  // goes, and lets its mirror go
  contents.mirrors = {{"mirror-acme-greet", kNow - 300 * kDay},
                      {"mirror-acme-lint", kNow - 60 * kDay},
                      {"mirror-acme-fresh", kNow - kDay},          // fetched yesterday, no tree yet
                      {"mirror-old-source", kNow - 45 * kDay}};    // of a source no longer configured
  const auto plan = plan_action_pruning(contents, {}, {}, kThirtyDays, kNow);
  EXPECT_THAT(names(plan.trees), ElementsAre("acme/lint@a"));
  EXPECT_THAT(plan.mirrors, ElementsAre("mirror-acme-lint", "mirror-old-source"));
}

TEST(PlanActionPruning, AMirrorAnUnfinishedRunUsesStaysEvenWithoutATree) {
  ActionCacheContents contents;
  contents.mirrors = {{"mirror-acme-greet", kNow - 300 * kDay}};
  const auto plan = plan_action_pruning(contents, {{"acme/greet", kA, "mirror-acme-greet"}}, {}, kThirtyDays, kNow);
  EXPECT_THAT(plan.mirrors, IsEmpty());
}

TEST(PlanActionPruning, ARecordedUseCountsLikeAStamp) {
  ActionCacheContents contents;
  // Written long ago by a version that did not stamp uses; a run used kA last week.
  contents.trees = {tree("acme", "greet", kA, kNow - 300 * kDay), tree("acme", "greet", kB, kNow - 300 * kDay)};
  contents.mirrors = {{"mirror-acme-greet", kNow - 300 * kDay}, {"mirror-acme-lint", kNow - 300 * kDay}};
  const std::vector<ActionUse> recorded = {
      {"acme/greet", kA, "mirror-acme-greet", kNow - 7 * kDay},
      {"acme/greet", kB, "mirror-acme-greet", kNow - 31 * kDay},
      // A tree removed since, whose mirror was fetched for it last week: the mirror stays.
      {"ACME/lint", kC, "mirror-acme-lint", kNow - 7 * kDay}};
  const auto plan = plan_action_pruning(contents, {}, recorded, kThirtyDays, kNow);
  EXPECT_THAT(names(plan.trees), ElementsAre("acme/greet@b"));
  EXPECT_THAT(plan.mirrors, IsEmpty());
}

TEST(PlanActionPruning, HalfWrittenTreesGoOnlyAfterADay) {
  ActionCacheContents contents;
  contents.temporaries = {{".tmp-aaaaaaaaaaaa-new", kNow - kDay / 2},
                          {".tmp-bbbbbbbbbbbb-old", kNow - kDay - 1}};
  // Whatever the age for actions: a writer that died is a day late at most.
  const auto plan = plan_action_pruning(contents, {}, {}, 365 * kDay, kNow);
  EXPECT_THAT(plan.temporaries, ElementsAre(".tmp-bbbbbbbbbbbb-old"));
}

TEST(PlanActionPruning, NothingUsedRecentlyIsEverPlanned) {
  ActionCacheContents contents;
  contents.trees = {tree("acme", "greet", kA, kNow)};
  contents.mirrors = {{"mirror-acme-greet", kNow}};
  contents.temporaries = {{".tmp-x", kNow}};
  const auto plan = plan_action_pruning(contents, {}, {}, kDay, kNow);
  EXPECT_THAT(plan.trees, IsEmpty());
  EXPECT_THAT(plan.mirrors, IsEmpty());
  EXPECT_THAT(plan.temporaries, IsEmpty());
}

}  // namespace
}  // namespace sandci::agent
