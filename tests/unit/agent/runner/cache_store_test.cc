#include "agent/runner/cache_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/runner/cache_action.h"
#include "agent/runner/run_engine.h"
#include "support/temp_dir.h"
#include "support/files.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::read_file;
using sandci::testing::write_file;
using sandci::testing::TempDir;

const std::string kVersion = cache_version("node_modules");

CacheScope branch(const std::string& ref) {
  return {"octo/app", ref, ref == "refs/heads/main" ? std::vector<std::string>{ref}
                                                    : std::vector<std::string>{ref, "refs/heads/main"}};
}

class CacheStoreTest : public ::testing::Test {
 protected:
  // Saves one entry whose single file holds `content`.
  CacheStore::SaveResult save(const CacheScope& scope, const std::string& key, const std::string& content,
                              const std::string& version = kVersion) {
    auto staging = store_.staging_folder(scope.repository);
    EXPECT_TRUE(staging.has_value());
    write_file(*staging / "workspace/node_modules/pkg/index.js", content);
    auto saved = store_.save(scope, key, version, *staging);
    EXPECT_TRUE(saved.has_value()) << (saved ? "" : saved.error());
    return saved.value_or(CacheStore::SaveResult{});
  }

  std::optional<CacheEntry> find(const CacheScope& scope, const std::string& key,
                                 std::vector<std::string> restore_keys = {}, const std::string& version = kVersion) {
    auto found = store_.find(scope, {key, std::move(restore_keys), version});
    EXPECT_TRUE(found.has_value()) << (found ? "" : found.error());
    return found.value_or(std::nullopt);
  }

  static std::string content(const CacheEntry& entry) { return read_file(entry.files / "workspace/node_modules/pkg/index.js"); }

  TempDir tmp_{"sandci-cache-"};
  CacheStore store_{tmp_.path() / "cache", 0};
};

TEST_F(CacheStoreTest, ExactKeyIsFoundWithItsFiles) {
  const auto main = branch("refs/heads/main");
  EXPECT_EQ(save(main, "npm-linux-abc", "v1").status, CacheStore::SaveStatus::kSaved);
  auto hit = find(main, "npm-linux-abc");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->key, "npm-linux-abc");
  EXPECT_EQ(content(*hit), "v1");
  EXPECT_EQ(hit->bytes, 2u);
}

TEST_F(CacheStoreTest, NothingSavedIsAMiss) {
  EXPECT_FALSE(find(branch("refs/heads/main"), "npm-linux-abc", {"npm-linux-", "npm-"}));
}

TEST_F(CacheStoreTest, ExactKeyWinsOverNewerPrefixMatches) {
  const auto main = branch("refs/heads/main");
  save(main, "npm-linux-abc", "exact");
  save(main, "npm-linux-abcdef", "newer, longer");
  auto hit = find(main, "npm-linux-abc", {"npm-"});
  ASSERT_TRUE(hit);
  EXPECT_EQ(content(*hit), "exact");
}

TEST_F(CacheStoreTest, RestoreKeysMatchAsPrefixesNewestFirstInTheirOrder) {
  const auto main = branch("refs/heads/main");
  save(main, "npm-linux-111", "old linux");
  save(main, "npm-linux-222", "new linux");
  save(main, "npm-macos-333", "newest, other prefix");
  auto hit = find(main, "npm-linux-999", {"npm-linux-", "npm-"});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->key, "npm-linux-222");
  // The second restore key only when the first matches nothing.
  hit = find(main, "yarn-1", {"yarn-", "npm-"});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->key, "npm-macos-333");
}

TEST_F(CacheStoreTest, OtherPathsAreAnotherVersionAndNeverMatch) {
  const auto main = branch("refs/heads/main");
  save(main, "deps-1", "x", cache_version("vendor/"));
  EXPECT_FALSE(find(main, "deps-1", {"deps-"}));
  EXPECT_TRUE(find(main, "deps-1", {}, cache_version("vendor/")));
}

TEST_F(CacheStoreTest, ABranchReadsItsOwnEntriesThenTheDefaultBranchs) {
  save(branch("refs/heads/main"), "npm-abc", "from main");
  save(branch("refs/heads/feature"), "npm-abc", "from feature");
  save(branch("refs/heads/other"), "npm-xyz", "from other");
  auto feature = find(branch("refs/heads/feature"), "npm-abc");
  ASSERT_TRUE(feature);
  EXPECT_EQ(content(*feature), "from feature");
  auto fresh = find(branch("refs/heads/fresh"), "npm-abc");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(content(*fresh), "from main");
  // A sibling branch's entries are not visible.
  EXPECT_FALSE(find(branch("refs/heads/fresh"), "npm-xyz"));
  // The default branch does not see a feature branch's entries.
  save(branch("refs/heads/feature"), "only-feature", "f");
  EXPECT_FALSE(find(branch("refs/heads/main"), "only-feature"));
}

TEST_F(CacheStoreTest, OwnScopeIsSearchedCompletelyBeforeTheDefaultBranch) {
  save(branch("refs/heads/main"), "npm-abc", "exact on main");
  save(branch("refs/heads/feature"), "npm-old", "prefix on feature");
  auto hit = find(branch("refs/heads/feature"), "npm-abc", {"npm-"});
  ASSERT_TRUE(hit);
  EXPECT_EQ(content(*hit), "prefix on feature");
}

TEST_F(CacheStoreTest, APullRequestReadsItsBaseAndWritesItsOwnScope) {
  RunSource source;
  source.repository = "octo/app";
  source.ref = "refs/pull/7/head";
  RunTrigger trigger;
  trigger.event = "pull_request";
  trigger.base_ref = "release";
  const CacheScope pr = cache_scope(source, trigger);
  EXPECT_EQ(pr.write_ref, "refs/pull/7/merge");
  EXPECT_EQ(pr.read_refs, (std::vector<std::string>{"refs/pull/7/merge", "refs/heads/release"}));

  save(branch("refs/heads/release"), "npm-abc", "from base");
  auto hit = find(pr, "npm-abc");
  ASSERT_TRUE(hit);
  EXPECT_EQ(content(*hit), "from base");
  save(pr, "npm-pr", "pr's own");
  EXPECT_TRUE(find(pr, "npm-pr"));
  EXPECT_FALSE(find(branch("refs/heads/release"), "npm-pr"));
}

TEST_F(CacheStoreTest, APushReadsThePayloadsDefaultBranch) {
  RunSource source;
  source.repository = "octo/app";
  source.ref = "refs/heads/feature";
  RunTrigger trigger;
  trigger.payload = {{"repository", {{"default_branch", "trunk"}}}};
  const CacheScope scope = cache_scope(source, trigger);
  EXPECT_EQ(scope.write_ref, "refs/heads/feature");
  EXPECT_EQ(scope.read_refs, (std::vector<std::string>{"refs/heads/feature", "refs/heads/trunk"}));
}

TEST_F(CacheStoreTest, EntriesAreImmutable) {
  const auto main = branch("refs/heads/main");
  save(main, "k", "first");
  EXPECT_EQ(save(main, "k", "second").status, CacheStore::SaveStatus::kExists);
  EXPECT_EQ(content(*find(main, "k")), "first");
  // The refused staging folder is gone too.
  for (const auto& e : fs::directory_iterator(store_.entries("octo/app").front().files.parent_path().parent_path()))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
}

TEST_F(CacheStoreTest, RepositoriesNeverShareEntries) {
  save(branch("refs/heads/main"), "k", "app");
  CacheScope other{"octo/other", "refs/heads/main", {"refs/heads/main"}};
  EXPECT_FALSE(find(other, "k"));
}

TEST_F(CacheStoreTest, KeysAreValidated) {
  EXPECT_TRUE(validate_cache_key("npm-linux-abc"));
  EXPECT_FALSE(validate_cache_key(""));
  EXPECT_FALSE(validate_cache_key("a,b"));
  EXPECT_FALSE(validate_cache_key(std::string(513, 'k')));
  auto staging = store_.staging_folder("octo/app");
  ASSERT_TRUE(staging);
  EXPECT_FALSE(store_.save(branch("refs/heads/main"), "a,b", kVersion, *staging));
  EXPECT_FALSE(fs::exists(staging->parent_path()));
}

TEST(CacheBudgetTest, LeastRecentlyUsedEntriesAreEvictedToFitTheBudget) {
  TempDir tmp{"sandci-cache-"};
  CacheStore store(tmp.path() / "cache", 10);
  const CacheScope main{"octo/app", "refs/heads/main", {"refs/heads/main"}};
  auto put = [&](const std::string& key, std::size_t bytes) {
    auto staging = store.staging_folder("octo/app");
    write_file(*staging / "workspace/f", std::string(bytes, 'x'));
    return store.save(main, key, kVersion, *staging).value();
  };
  put("a", 4);
  put("b", 4);
  // "a" is used again: "b" is now the least recently used.
  ASSERT_TRUE(store.find(main, {"a", {}, kVersion}).value());
  auto saved = put("c", 4);
  EXPECT_EQ(saved.status, CacheStore::SaveStatus::kSaved);
  EXPECT_EQ(saved.evicted, std::vector<std::string>{"b"});
  std::vector<std::string> keys;
  for (const auto& e : store.entries("octo/app")) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(put("huge", 11).status, CacheStore::SaveStatus::kTooBig);
  EXPECT_EQ(store.entries("octo/app").size(), 2u);
}

TEST(CacheCrashTest, AHalfWrittenEntryIsNeverSeenAndIsCleanedUp) {
  TempDir tmp{"sandci-cache-"};
  const CacheScope main{"octo/app", "refs/heads/main", {"refs/heads/main"}};
  fs::path repo_dir;
  {
    CacheStore store(tmp.path() / "cache", 0);
    auto staging = store.staging_folder("octo/app");
    write_file(*staging / "workspace/f", "partial");
    repo_dir = staging->parent_path().parent_path();
    // A crashed process: its staging folder, named after a pid that no longer runs.
    fs::rename(staging->parent_path(), repo_dir / ".tmp-999999999-1");
    // And a folder without metadata where an entry would go.
    write_file(repo_dir / "0123456789abcdef0123456789abcdef/files/workspace/f", "no meta");
  }
  CacheStore store(tmp.path() / "cache", 0);
  EXPECT_TRUE(store.entries("octo/app").empty());
  EXPECT_FALSE(store.find(main, {"k", {""}, kVersion}).value());
  auto staging = store.staging_folder("octo/app");
  write_file(*staging / "workspace/f", "whole");
  ASSERT_TRUE(store.save(main, "k", kVersion, *staging));
  EXPECT_FALSE(fs::exists(repo_dir / ".tmp-999999999-1"));
  ASSERT_EQ(store.entries("octo/app").size(), 1u);
  EXPECT_EQ(read_file(store.entries("octo/app").front().files / "workspace/f"), "whole");
}

TEST(CachePathTest, PathsMapIntoTheWorkspaceHomeAndTmp) {
  EXPECT_EQ(cache_path_in_sandbox("node_modules").value(), "workspace/node_modules");
  EXPECT_EQ(cache_path_in_sandbox("  ~/.npm ").value(), "root/.npm");
  EXPECT_EQ(cache_path_in_sandbox("~").value(), "root");
  EXPECT_EQ(cache_path_in_sandbox("/tmp/ccache/**").value(), "tmp/ccache/**");
  EXPECT_EQ(cache_path_in_sandbox("/workspace/a/../b").value(), "workspace/b");
  EXPECT_EQ(cache_path_in_sandbox("!dist/*.map").value(), "!workspace/dist/*.map");
}

TEST(CachePathTest, GitHubsHomeAndToolCachePathsAreAccepted) {
  EXPECT_EQ(cache_path_in_sandbox("~/.cache/pip").value(), "root/.cache/pip");
  EXPECT_EQ(cache_path_in_sandbox("/home/runner/.cargo/registry").value(), "home/runner/.cargo/registry");
  EXPECT_EQ(cache_path_in_sandbox("/home/runner/work/build").value(), "home/runner/work/build");
  EXPECT_EQ(cache_path_in_sandbox("/opt/hostedtoolcache/go").value(), "opt/hostedtoolcache/go");
}

TEST(CachePathTest, PathsOutsideTheAllowedFoldersAreRefused) {
  for (const char* bad : {"/usr/lib", "/etc/passwd", "../outside", "~/../etc", "/", "~other/x", "/workspace/../etc",
                          "/home/runner/../../etc", "/opt/../usr", "/homework"}) {
    auto mapped = cache_path_in_sandbox(bad);
    EXPECT_FALSE(mapped) << bad << " -> " << mapped.value_or("");
  }
  EXPECT_NE(cache_path_in_sandbox("/usr/lib").error().find("/usr/lib"), std::string::npos);
}

}  // namespace
}  // namespace sandci::agent
