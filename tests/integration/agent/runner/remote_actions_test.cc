// Remote actions through the mirror cache, against a real git daemon on 127.0.0.1
// serving action repositories made here: refs of every kind, one commit per ref for
// a whole run, the cache when the source is gone, what the errors say, and pruning:
// each use stamps the tree and mirror it used, what was not used for the age goes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "agent/runner/remote_actions.h"
#include "git/url.h"
#include "integration/git/git_test_support.h"
#include "support/files.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::read_file;
using git::testing::git;

scheduler::UsesRef uses(const std::string& text) {
  auto ref = scheduler::parse_uses(text);
  EXPECT_TRUE(ref) << ref.error();
  return ref.value_or(scheduler::UsesRef{});
}

const std::string kActionYml = R"(name: Greet
description: Says hello to someone
inputs:
  who:
    description: whom to greet
    default: world
runs:
  using: composite
  steps:
    - run: echo "hello ${{ inputs.who }}"
      shell: bash
)";

constexpr std::int64_t kDay = 24LL * 3600 * 1000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Makes a folder look last used `days` ago.
void age(const fs::path& path, std::int64_t days) {
  const std::int64_t ms = now_ms() - days * kDay;
  const timespec at{static_cast<time_t>(ms / 1000), 0};
  const timespec times[2] = {at, at};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

class RemoteActionsTest : public ::testing::Test {
 protected:
  fs::path srv() const { return root_.path() / "srv"; }
  fs::path state() const { return root_.path() / "state"; }
  ActionsOptions options() const {
    ActionsOptions o;
    o.state_dir = state();
    o.source = "git://127.0.0.1:" + std::to_string(daemon_->port());
    o.connect_timeout = std::chrono::seconds(5);
    return o;
  }

  git::testing::TempDir root_;
  std::unique_ptr<git::testing::RepoOnServer> repo_ = [this] {
    fs::create_directories(srv() / "acme");
    return std::make_unique<git::testing::RepoOnServer>(srv(), "acme/greet");
  }();
  // v1 (lightweight tag), v2 (annotated tag) and branch main at the second commit.
  std::string first_ = [this] {
    auto sha = repo_->commit({{"action.yml", kActionYml}, {"README.md", "v1\n"}}, "greet v1");
    repo_->push("HEAD:refs/heads/main");
    repo_->push("HEAD:refs/tags/v1");
    return sha;
  }();
  std::string second_ = [this] {
    auto sha = repo_->commit({{"README.md", "v2\n"}, {"lint/action.yml", kActionYml}}, "greet v2, and lint");
    git(repo_->work(), {"tag", "-a", "v2", "-m", "release 2"});
    repo_->push("HEAD:refs/heads/main");
    repo_->push("refs/tags/v2");
    return sha;
  }();
  std::unique_ptr<git::testing::GitDaemon> daemon_ = std::make_unique<git::testing::GitDaemon>(srv());
  ActionCache cache_{options()};
};

TEST_F(RemoteActionsTest, FetchesByLightweightTagAndGivesTheFilesWithoutGit) {
  RunActionSource source(cache_);
  auto fetched = source.fetch(uses("acme/greet@v1"));
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, first_);
  EXPECT_EQ(read_file(fetched->root / "action.yml"), kActionYml);
  EXPECT_EQ(read_file(fetched->root / "README.md"), "v1\n");
  EXPECT_FALSE(fs::exists(fetched->root / "lint"));
  EXPECT_FALSE(fs::exists(fetched->root / ".git")) << "jobs get files only";
  EXPECT_EQ(fetched->root, state() / "actions" / "trees" / "acme" / "greet" / first_);
}

TEST_F(RemoteActionsTest, FetchesByAnnotatedTagBranchFullAndShortCommit) {
  RunActionSource source(cache_);
  for (const std::string& ref : {std::string("v2"), std::string("main"), second_, second_.substr(0, 7)}) {
    auto fetched = source.fetch(uses("acme/greet/lint@" + ref));
    ASSERT_TRUE(fetched) << ref << ": " << fetched.error();
    EXPECT_EQ(fetched->commit, second_) << ref;
    EXPECT_EQ(read_file(fetched->root / "lint" / "action.yml"), kActionYml) << ref;
  }
  auto old = source.fetch(uses("acme/greet@" + first_.substr(0, 10)));
  ASSERT_TRUE(old) << old.error();
  EXPECT_EQ(old->commit, first_);
  // Every resolution is recorded, once, with the URL it came from.
  const auto records = source.resolutions();
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].repository, "acme/greet");
  EXPECT_EQ(records[0].ref, "v2");
  EXPECT_EQ(records[0].commit, second_);
  EXPECT_EQ(records[0].url, options().source + "/acme/greet");
  EXPECT_FALSE(records[0].from_cache);
}

TEST_F(RemoteActionsTest, TagWinsOverBranchOfTheSameName) {
  repo_->push(first_ + ":refs/heads/v2");  // a branch named like the tag, at another commit
  RunActionSource source(cache_);
  auto fetched = source.fetch(uses("acme/greet@v2"));
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, second_);
}

TEST_F(RemoteActionsTest, OneRunKeepsItsCommitWhenTheTagMovesUpstream) {
  RunActionSource run(cache_);
  auto before = run.fetch(uses("acme/greet@v1"));
  ASSERT_TRUE(before) << before.error();
  ASSERT_EQ(before->commit, first_);

  repo_->push("+" + second_ + ":refs/tags/v1");  // someone moves v1
  // Jobs of the same run ask at once, with the owner in another case too.
  std::vector<std::string> seen(6);
  std::vector<std::thread> jobs;
  for (std::size_t i = 0; i < seen.size(); ++i)
    jobs.emplace_back([&, i] {
      auto fetched = run.fetch(uses(i % 2 ? "Acme/greet@v1" : "acme/greet@v1"));
      seen[i] = fetched ? fetched->commit : fetched.error();
    });
  for (auto& job : jobs) job.join();
  for (const auto& commit : seen) EXPECT_EQ(commit, first_);
  EXPECT_EQ(run.resolutions().size(), 1u);

  // The next run sees where the tag is now; both trees stay side by side.
  RunActionSource next(cache_);
  auto after = next.fetch(uses("acme/greet@v1"));
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(after->commit, second_);
  EXPECT_NE(after->root, before->root);
  EXPECT_EQ(read_file(before->root / "README.md"), "v1\n");
}

TEST_F(RemoteActionsTest, TwoRunsShareOneTreePerCommit) {
  RunActionSource a(cache_), b(cache_);
  auto first = a.fetch(uses("acme/greet@v2"));
  auto second = b.fetch(uses("acme/greet@main"));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->root, second->root);
  std::size_t temps = 0;
  for (const auto& entry : fs::directory_iterator(cache_.trees_dir()))
    temps += entry.path().filename().string().starts_with(".tmp-");
  EXPECT_EQ(temps, 0u) << "no half-written tree is left behind";
}

TEST_F(RemoteActionsTest, UsesTheCacheWhenTheSourceIsGoneAndSaysSo) {
  {
    RunActionSource warm(cache_);
    ASSERT_TRUE(warm.fetch(uses("acme/greet@v1")));
    ASSERT_TRUE(warm.fetch(uses("acme/greet@main")));
  }
  daemon_->stop();
  RunActionSource offline(cache_);
  std::vector<ActionResolution> told;
  offline.on_resolved([&](const ActionResolution& r) { told.push_back(r); });
  auto fetched = offline.fetch(uses("acme/greet@v1"));
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, first_);
  EXPECT_EQ(read_file(fetched->root / "action.yml"), kActionYml);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_TRUE(told[0].from_cache);
  EXPECT_NE(told[0].problem, "");
  // A full commit the cache holds needs no source at all.
  auto pinned = offline.fetch(uses("acme/greet@" + second_));
  ASSERT_TRUE(pinned) << pinned.error();
  ASSERT_EQ(told.size(), 2u);
  EXPECT_FALSE(told[1].from_cache);

  // A ref the cache never saw: the error says how to fill it.
  auto missing = offline.fetch(uses("acme/greet@v7"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("no tag, branch or commit 'v7'"), std::string::npos) << missing.error();
  EXPECT_NE(missing.error().find("`sandci actions add acme/greet@v7`"), std::string::npos) << missing.error();
  EXPECT_NE(missing.error().find(options().source + "/acme/greet"), std::string::npos) << missing.error();
}

TEST_F(RemoteActionsTest, NeitherSourceNorCacheNamesSandciActionsAdd) {
  daemon_->stop();
  RunActionSource run(cache_);
  auto fetched = run.fetch(uses("acme/greet@v1"));
  ASSERT_FALSE(fetched);
  EXPECT_NE(fetched.error().find("cannot fetch acme/greet@v1 from " + options().source + "/acme/greet"),
            std::string::npos)
      << fetched.error();
  EXPECT_NE(fetched.error().find("fill the cache with `sandci actions add acme/greet@v1`"), std::string::npos)
      << fetched.error();
  EXPECT_TRUE(run.resolutions().empty());
}

TEST_F(RemoteActionsTest, UnknownRefAndUnknownRepositoryAreErrorsNotCacheHits) {
  RunActionSource run(cache_);
  auto ref = run.fetch(uses("acme/greet@v9"));
  ASSERT_FALSE(ref);
  EXPECT_EQ(ref.error(), "acme/greet has no tag, branch or commit 'v9' (" + options().source + "/acme/greet)");
  // The failure is remembered for the run: asking again gives the same answer.
  auto again = run.fetch(uses("acme/greet@v9"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), ref.error());

  auto repo = run.fetch(uses("acme/nothing-here@v1"));
  ASSERT_FALSE(repo);
  EXPECT_NE(repo.error().find("cannot fetch acme/nothing-here@v1 from " + options().source + "/acme/nothing-here"),
            std::string::npos)
      << repo.error();
  EXPECT_EQ(repo.error().find("sandci actions add"), std::string::npos)
      << "the server answered: filling a cache would not help";
}

TEST_F(RemoteActionsTest, RefusesRevisionSyntaxAndUnsafeNames) {
  RunActionSource run(cache_);
  for (const char* text : {"acme/greet@main~1", "acme/greet@HEAD", "acme/greet@v1^{tree}", "../x/greet@v1",
                                  "acme/..@v1"}) {
    auto ref = scheduler::parse_uses(text);
    if (!ref) continue;  // refused earlier still
    auto fetched = run.fetch(*ref);
    ASSERT_FALSE(fetched) << text;
    EXPECT_NE(fetched.error().find("is not a"), std::string::npos) << fetched.error();
  }
  EXPECT_FALSE(fs::exists(state() / "actions" / "x"));
}

TEST_F(RemoteActionsTest, ListShowsCachedRepositoriesRefsAndTrees) {
  RunActionSource run(cache_);
  ASSERT_TRUE(run.fetch(uses("acme/greet@v1")));
  const auto listed = cache_.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].repository, "acme/greet");
  EXPECT_TRUE(listed[0].mirrored);
  EXPECT_EQ(listed[0].trees, std::vector<std::string>{first_});
  std::map<std::string, std::pair<std::string, bool>> refs;
  for (const auto& r : listed[0].refs) refs[r.name] = {r.commit, r.tree};
  EXPECT_EQ(refs["refs/tags/v1"], std::pair(first_, true));
  EXPECT_EQ(refs["refs/tags/v2"], std::pair(second_, false));
  EXPECT_EQ(refs["refs/heads/main"], std::pair(second_, false));
}

TEST_F(RemoteActionsTest, EachUseStampsTheTreeAndMirrorSoAPruneKeepsThem) {
  std::optional<FetchedRepository> first;
  {
    RunActionSource run(cache_);
    auto fetched = run.fetch(uses("acme/greet@v1"));
    ASSERT_TRUE(fetched) << fetched.error();
    first = *fetched;
  }
  const fs::path mirror = state() / "actions" / "mirrors" /
                          git::mirror_dir_name(action_repository_url(options().source, "acme", "greet"));
  ASSERT_TRUE(fs::is_directory(mirror));
  age(first->root, 40);
  age(mirror, 40);
  // A later run uses the same tree (by its full commit: no fetch): both are stamped again.
  RunActionSource later(cache_);
  auto again = later.fetch(uses("acme/greet@" + first_));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->root, first->root);
  EXPECT_GE(modified_ms(first->root), now_ms() - 60'000);
  EXPECT_GE(modified_ms(mirror), now_ms() - 60'000);

  const auto report = cache_.prune({}, {}, 30 * kDay, now_ms());
  EXPECT_FALSE(report.deferred);
  EXPECT_EQ(report.removed_trees, 0u);
  EXPECT_EQ(report.removed_mirrors, 0u);
  EXPECT_EQ(read_file(first->root / "README.md"), "v1\n");
}

TEST_F(RemoteActionsTest, APruneRemovesWhatNoRunUsedForTheAgeAndALaterRunFetchesItAgain) {
  RunActionSource run(cache_);
  auto v1 = run.fetch(uses("acme/greet@v1"));
  auto v2 = run.fetch(uses("acme/greet@v2"));
  ASSERT_TRUE(v1 && v2);
  const fs::path mirror = state() / "actions" / "mirrors" /
                          git::mirror_dir_name(action_repository_url(options().source, "acme", "greet"));
  age(v1->root, 31);
  age(mirror, 31);
  // v2 was used yesterday: it stays, and so does the mirror it comes from.
  age(v2->root, 1);
  auto report = cache_.prune({}, {}, 30 * kDay, now_ms());
  EXPECT_EQ(report.removed_trees, 1u);
  EXPECT_EQ(report.removed_mirrors, 0u);
  EXPECT_GT(report.freed_bytes, 0u);
  EXPECT_EQ(report.removed, std::vector<std::string>{"trees/acme/greet/" + first_});
  EXPECT_TRUE(report.failed.empty());
  EXPECT_FALSE(fs::exists(v1->root));
  EXPECT_TRUE(fs::exists(v2->root / "lint" / "action.yml"));
  EXPECT_TRUE(fs::exists(mirror / "HEAD"));

  // An unfinished run that resolved v2 keeps it however old; once it is over, all goes.
  age(v2->root, 31);
  report = cache_.prune({{"acme/greet", second_, "", 0}}, {}, 30 * kDay, now_ms());
  EXPECT_EQ(report.removed_trees, 0u);
  EXPECT_EQ(report.removed_mirrors, 0u);
  report = cache_.prune({}, {}, 30 * kDay, now_ms());
  EXPECT_EQ(report.removed_trees, 1u);
  EXPECT_EQ(report.removed_mirrors, 1u);
  EXPECT_FALSE(fs::exists(mirror));
  EXPECT_TRUE(cache_.list().empty()) << "a repository with nothing left is forgotten";

  // The next run fetches and writes them again.
  RunActionSource next(cache_);
  auto fetched = next.fetch(uses("acme/greet@v1"));
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, first_);
  EXPECT_EQ(read_file(fetched->root / "README.md"), "v1\n");
}

TEST_F(RemoteActionsTest, AUseWaitsForAPruneUnderWay) {
  {
    RunActionSource warm(cache_);
    ASSERT_TRUE(warm.fetch(uses("acme/greet@v1")));
  }
  // What a prune holds while it reads the stamps and moves folders aside: a run that
  // resolves meanwhile must not look at (nor stamp) the cache until it is done.
  std::optional<ActionCacheLock> pruning;
  pruning.emplace(state() / "actions", ActionCacheLock::Mode::exclusive_if_free);
  ASSERT_TRUE(pruning->held());
  std::atomic<bool> done{false};
  std::expected<FetchedRepository, std::string> fetched = std::unexpected(std::string("not yet"));
  std::thread run([&] {
    RunActionSource source(cache_);
    fetched = source.fetch(uses("acme/greet@" + first_));  // in the mirror: no network needed
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(done) << "the resolution went on during the prune";
  pruning.reset();
  run.join();
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, first_);
}

}  // namespace
}  // namespace sandci::agent
