// MirrorCache against a real git daemon on 127.0.0.1: clone, fetch, prune, tags,
// pull-request refs, checkouts where real git works, concurrency, missing commits.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "git/mirror_cache.h"
#include "git_test_support.h"
#include "support/files.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using sandci::testing::read_file;
using testing::git;
using testing::run;

class MirrorTest : public ::testing::Test {
 protected:
  fs::path srv() const { return root_.path() / "srv"; }
  fs::path state() const { return root_.path() / "state"; }
  fs::path out(const std::string& name) const { return root_.path() / "out" / name; }

  testing::TempDir root_;
  // Declared after root_ so they are destroyed (server stopped) before the folder goes.
  std::unique_ptr<testing::RepoOnServer> repo_ = [this] {
    fs::create_directories(srv());
    return std::make_unique<testing::RepoOnServer>(srv(), "app.git");
  }();
  testing::GitDaemon daemon_{srv()};
  MirrorCache cache_{state()};
};

TEST_F(MirrorTest, FirstCloneCreatesMirrorWithBranchesAndTags) {
  std::string sha = repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  git(repo_->work(), {"tag", "v1.0"});
  repo_->push("refs/tags/v1.0");

  std::vector<FetchProgress> reports;
  FetchOptions options;
  options.on_progress = [&](const FetchProgress& p) { reports.push_back(p); };
  auto result = cache_.fetch(daemon_.url("app.git"), options);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_TRUE(result->created);
  EXPECT_FALSE(result->rebuilt);
  EXPECT_EQ(result->mirror, cache_.mirror_path(daemon_.url("app.git")));
  EXPECT_GT(result->progress.received_objects, 0u);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().received_objects, result->progress.received_objects);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), sha);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/tags/v1.0^{commit}"}), sha);
  EXPECT_EQ(git(result->mirror, {"config", "remote.origin.url"}), daemon_.url("app.git"));
}

TEST_F(MirrorTest, IncrementalFetchBringsNewCommits) {
  repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  ASSERT_TRUE(cache_.fetch(daemon_.url("app.git")));
  std::string second = repo_->commit_one("second");
  repo_->push("HEAD:refs/heads/main");

  auto result = cache_.fetch(daemon_.url("app.git"));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_FALSE(result->created);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), second);
  // Only the new commit's objects travel: commit, tree, one blob.
  EXPECT_LE(result->progress.received_objects, 3u);
}

TEST_F(MirrorTest, ForcePushMovesTheBranchAndOldCommitStaysCheckoutable) {
  std::string old_sha = repo_->commit_one("will be rewritten");
  repo_->push("HEAD:refs/heads/main");
  ASSERT_TRUE(cache_.fetch(daemon_.url("app.git")));
  git(repo_->work(), {"commit", "-q", "--amend", "-m", "rewritten"});
  std::string new_sha = git(repo_->work(), {"rev-parse", "HEAD"});
  repo_->push("+HEAD:refs/heads/main");

  auto result = cache_.fetch(daemon_.url("app.git"));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), new_sha);
  // A run queued before the force-push can still build the commit it was for.
  auto co = cache_.checkout(daemon_.url("app.git"), old_sha, out("old"));
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(git(out("old"), {"log", "-1", "--format=%s"}), "will be rewritten");
}

TEST_F(MirrorTest, DeletedBranchIsPruned) {
  repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  repo_->push("HEAD:refs/heads/feature");
  auto first = cache_.fetch(daemon_.url("app.git"));
  ASSERT_TRUE(first);
  ASSERT_EQ(run({"git", "-C", first->mirror.string(), "rev-parse", "--verify", "-q",
                 "refs/heads/feature"}).status, 0);
  repo_->push(":refs/heads/feature");

  ASSERT_TRUE(cache_.fetch(daemon_.url("app.git")));
  EXPECT_NE(run({"git", "-C", first->mirror.string(), "rev-parse", "--verify", "-q",
                 "refs/heads/feature"}).status, 0);
  EXPECT_EQ(run({"git", "-C", first->mirror.string(), "rev-parse", "--verify", "-q",
                 "refs/heads/main"}).status, 0);
}

TEST_F(MirrorTest, PullRequestRefsOnlyWhenAsked) {
  repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  std::string pr_sha = repo_->commit_one("pr work");
  repo_->push("HEAD:refs/pull/7/head");
  repo_->push("HEAD:refs/merge-requests/3/head");

  auto plain = cache_.fetch(daemon_.url("app.git"));
  ASSERT_TRUE(plain);
  EXPECT_NE(run({"git", "-C", plain->mirror.string(), "rev-parse", "--verify", "-q",
                 "refs/pull/7/head"}).status, 0);

  FetchOptions with_prs;
  with_prs.pull_requests = true;
  auto result = cache_.fetch(daemon_.url("app.git"), with_prs);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/pull/7/head"}), pr_sha);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/merge-requests/3/head"}), pr_sha);
}

TEST_F(MirrorTest, CheckoutIsARealGitWorktreeDetachedAtTheCommit) {
  std::string sha = repo_->commit({{"README.md", "hello\n"}, {"src/main.c", "int main(){}\n"},
                                   {"run.sh", "#!/bin/sh\necho hi\n"}},
                                  "add sources");
  run({"chmod", "+x", (repo_->work() / "run.sh").string()});
  std::string exec_sha = repo_->commit({}, "make run.sh executable");
  repo_->push("HEAD:refs/heads/main");

  // No explicit fetch: checkout fetches the commit it lacks.
  auto co = cache_.checkout(daemon_.url("app.git"), exec_sha, out("job"));
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(co->dir, out("job"));
  EXPECT_EQ(read_file(out("job") / "README.md"), "hello\n");
  EXPECT_EQ(read_file(out("job") / "src/main.c"), "int main(){}\n");
  EXPECT_TRUE((fs::status(out("job") / "run.sh").permissions() & fs::perms::owner_exec) !=
              fs::perms::none);
  EXPECT_EQ(git(out("job"), {"rev-parse", "HEAD"}), exec_sha);
  EXPECT_EQ(git(out("job"), {"log", "-1", "--format=%H %s"}), exec_sha + " make run.sh executable");
  EXPECT_EQ(git(out("job"), {"rev-list", "--count", "HEAD"}), "2");
  EXPECT_EQ(git(out("job"), {"status", "--porcelain"}), "");  // index matches the files
  EXPECT_EQ(run({"git", "-C", out("job").string(), "symbolic-ref", "-q", "HEAD"}).status, 1)
      << "HEAD must be detached";
  ASSERT_EQ(co->object_dirs.size(), 1u);
  EXPECT_EQ(co->object_dirs[0], cache_.mirror_path(daemon_.url("app.git")) / "objects");
  EXPECT_EQ(read_file(out("job") / ".git/objects/info/alternates"),
            co->object_dirs[0].string() + "\n");
  // Checkouts share the mirror: none may leave an index (or anything else) in it.
  EXPECT_FALSE(fs::exists(cache_.mirror_path(daemon_.url("app.git")) / "index"));
  (void)sha;
}

TEST_F(MirrorTest, UnknownShaIsShaNotFound) {
  repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  std::string missing(40, 'a');
  auto co = cache_.checkout(daemon_.url("app.git"), missing, out("x"));
  ASSERT_FALSE(co);
  EXPECT_EQ(co.error().kind, ErrorKind::kShaNotFound) << co.error().to_string();
  EXPECT_FALSE(fs::exists(out("x")));
}

TEST_F(MirrorTest, MalformedShaAndNonEmptyDestinationAreRejected) {
  std::string sha = repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  auto bad = cache_.checkout(daemon_.url("app.git"), "main", out("a"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  fs::create_directories(out("busy"));
  std::ofstream(out("busy") / "keep") << "x";
  auto busy = cache_.checkout(daemon_.url("app.git"), sha, out("busy"));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_TRUE(fs::exists(out("busy") / "keep"));
}

TEST_F(MirrorTest, ServerDownIsUnreachable) {
  std::string url = daemon_.url("app.git");
  daemon_.stop();
  auto result = cache_.fetch(url);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kUnreachable) << result.error().to_string();
  EXPECT_EQ(result.error().url, url);
  EXPECT_FALSE(fs::exists(cache_.mirror_path(url)));
}

TEST_F(MirrorTest, MissingRepositoryIsRepoNotFound) {
  auto result = cache_.fetch(daemon_.url("nope.git"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kRepoNotFound) << result.error().to_string();
}

TEST_F(MirrorTest, TwoRepositoriesFourConcurrentCheckoutsEach) {
  auto other = std::make_unique<testing::RepoOnServer>(srv(), "lib.git");
  std::vector<std::string> app_shas, lib_shas;
  for (int i = 0; i < 4; ++i) {
    app_shas.push_back(repo_->commit({{"n.txt", "app " + std::to_string(i)}}, "app " + std::to_string(i)));
    lib_shas.push_back(other->commit({{"n.txt", "lib " + std::to_string(i)}}, "lib " + std::to_string(i)));
  }
  repo_->push("HEAD:refs/heads/main");
  other->push("HEAD:refs/heads/main");

  // Eight threads start at once on two cold mirrors: each mirror must be fetched
  // once at a time, and every checkout must get its own commit.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      bool app = i % 2 == 0;
      int k = i / 2;
      std::string url = daemon_.url(app ? "app.git" : "lib.git");
      std::string sha = app ? app_shas[k] : lib_shas[k];
      auto dest = out("t" + std::to_string(i));
      auto co = cache_.checkout(url, sha, dest);
      if (!co) {
        errors[i] = co.error().to_string();
        return;
      }
      if (read_file(dest / "n.txt") == (app ? "app " : "lib ") + std::to_string(k)) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(ok.load(), 8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(git(out("t" + std::to_string(i)), {"rev-parse", "HEAD"}),
              (i % 2 == 0 ? app_shas : lib_shas)[i / 2]);
  }
}

}  // namespace
}  // namespace sandci::git
