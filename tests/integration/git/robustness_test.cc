// Large repositories, fetches killed half-way, damaged mirrors, and submodules,
// against a real git daemon on 127.0.0.1.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "git/mirror_cache.h"
#include "git_test_support.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using testing::git;
using testing::run;

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) ++n;
  }
  return n;
}

std::vector<std::string> files_named(const fs::path& dir, std::string_view prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().starts_with(prefix)) out.push_back(it->path().string());
  }
  return out;
}

// Runs this test binary again, as a child that starts a fetch and SIGKILLs itself as
// soon as the first objects arrive: a fetch killed half-way, without timing luck.
void fetch_and_die_in_child(const fs::path& state, const std::string& url) {
  std::string filter = "--gtest_filter=KilledFetchChild.DISABLED_FetchThenDie";
  pid_t pid = fork();
  if (pid == 0) {
    setenv("SANDCI_KILL_STATE", state.c_str(), 1);
    setenv("SANDCI_KILL_URL", url.c_str(), 1);
    execl("/proc/self/exe", "child", filter.c_str(), "--gtest_also_run_disabled_tests",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
}

TEST(KilledFetchChild, DISABLED_FetchThenDie) {
  const char* state = std::getenv("SANDCI_KILL_STATE");
  const char* url = std::getenv("SANDCI_KILL_URL");
  if (!state || !url) GTEST_SKIP() << "only run as a child of the killed-fetch tests";
  MirrorCache cache(state);
  FetchOptions options;
  options.on_progress = [](const FetchProgress& p) {
    if (p.received_objects > 0 && p.received_objects < p.total_objects) raise(SIGKILL);
  };
  auto result = cache.fetch(url, options);
  std::_Exit(result ? 3 : 4);  // reaching here means the fetch was never killed
}

class RobustnessTest : public ::testing::Test {
 protected:
  fs::path srv() const { return root_.path() / "srv"; }
  fs::path state() const { return root_.path() / "state"; }
  fs::path out(const std::string& name) const { return root_.path() / "out" / name; }
  std::unique_ptr<testing::RepoOnServer> make_repo(const std::string& name) {
    fs::create_directories(srv());
    return std::make_unique<testing::RepoOnServer>(srv(), name);
  }

  testing::TempDir root_;
  std::unique_ptr<testing::RepoOnServer> repo_ = make_repo("app.git");
  testing::GitDaemon daemon_{srv()};
  MirrorCache cache_{state()};
};

TEST_F(RobustnessTest, TenThousandFilesCheckout) {
  std::string sha = repo_->commit_many_files(10'000, "big");
  repo_->push("HEAD:refs/heads/main");
  auto co = cache_.checkout(daemon_.url("app.git"), sha, out("big"));
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(count_files(out("big")), 10'000u);
  std::ifstream f(out("big") / "big/d042/f04217.txt");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "file 4217 of big");
  EXPECT_EQ(git(out("big"), {"status", "--porcelain"}), "");
  EXPECT_EQ(git(out("big"), {"rev-parse", "HEAD"}), sha);
}

TEST_F(RobustnessTest, FirstFetchKilledHalfWayIsRedoneCleanly) {
  std::string sha = repo_->commit_many_files(500, "big");
  repo_->push("HEAD:refs/heads/main");
  std::string url = daemon_.url("app.git");
  fetch_and_die_in_child(state(), url);
  EXPECT_FALSE(fs::exists(cache_.mirror_path(url))) << "a half-built mirror took the real name";
  EXPECT_FALSE(files_named(state(), ".tmp-").empty()) << "the child died before building";

  auto result = cache_.fetch(url);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_TRUE(result->created);
  EXPECT_TRUE(files_named(state(), ".tmp-").empty()) << "leftovers were not removed";
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), sha);
  EXPECT_EQ(run({"git", "-C", result->mirror.string(), "fsck", "--connectivity-only"}).status, 0);
}

TEST_F(RobustnessTest, IncrementalFetchKilledHalfWayIsRepaired) {
  repo_->commit_one("small start");
  repo_->push("HEAD:refs/heads/main");
  std::string url = daemon_.url("app.git");
  auto first = cache_.fetch(url);
  ASSERT_TRUE(first) << first.error().to_string();
  std::string big = repo_->commit_many_files(500, "big");
  repo_->push("HEAD:refs/heads/main");

  fetch_and_die_in_child(state(), url);
  EXPECT_FALSE(files_named(first->mirror / "objects/pack", "pack_git2_").empty())
      << "expected a half-written pack from the killed fetch";
  // Had it died while updating refs, a lock would remain too.
  std::ofstream(first->mirror / "refs/heads/main.lock") << "garbage";

  auto result = cache_.fetch(url);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_FALSE(result->rebuilt);
  EXPECT_TRUE(files_named(first->mirror / "objects/pack", "pack_git2_").empty());
  EXPECT_FALSE(fs::exists(first->mirror / "refs/heads/main.lock"));
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), big);
  auto co = cache_.checkout(url, big, out("after"));
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(count_files(out("after")), 501u);
}

TEST_F(RobustnessTest, DamagedMirrorIsRebuilt) {
  std::string sha = repo_->commit_one("first");
  repo_->push("HEAD:refs/heads/main");
  std::string url = daemon_.url("app.git");
  auto first = cache_.fetch(url);
  ASSERT_TRUE(first) << first.error().to_string();
  for (const auto& pack : files_named(first->mirror / "objects", "pack-")) fs::remove(pack);
  fs::remove_all(first->mirror / "objects" / sha.substr(0, 2));  // in case it is loose

  auto result = cache_.fetch(url);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_TRUE(result->rebuilt);
  auto co = cache_.checkout(url, sha, out("co"));
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(git(out("co"), {"log", "-1", "--format=%s"}), "first");
}

TEST_F(RobustnessTest, SubmodulesAreCheckedOutRecursivelyThroughTheirOwnMirrors) {
  auto leaf = make_repo("leaf.git");
  std::string leaf_sha = leaf->commit({{"leaf.txt", "leaf\n"}}, "leaf");
  leaf->push("HEAD:refs/heads/main");
  auto lib = make_repo("lib.git");
  lib->commit({{"lib.txt", "lib\n"},
               {".gitmodules", "[submodule \"leaf\"]\n\tpath = deps/leaf\n\turl = ../leaf.git\n"}},
              "lib");
  git(lib->work(), {"update-index", "--add", "--cacheinfo", "160000," + leaf_sha + ",deps/leaf"});
  git(lib->work(), {"commit", "-q", "-m", "add leaf"});
  std::string lib_sha = git(lib->work(), {"rev-parse", "HEAD"});
  lib->push("HEAD:refs/heads/main");
  repo_->commit({{"app.txt", "app\n"},
                 {".gitmodules",
                  "[submodule \"vendor.lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n"}},
                "app");
  git(repo_->work(), {"update-index", "--add", "--cacheinfo", "160000," + lib_sha + ",vendor/lib"});
  git(repo_->work(), {"commit", "-q", "-m", "add lib"});
  std::string app_sha = git(repo_->work(), {"rev-parse", "HEAD"});
  repo_->push("HEAD:refs/heads/main");
  std::string url = daemon_.url("app.git");

  auto plain = cache_.checkout(url, app_sha, out("plain"));
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_TRUE(fs::is_directory(out("plain") / "vendor/lib"));
  EXPECT_TRUE(fs::is_empty(out("plain") / "vendor/lib"));

  CheckoutOptions options;
  options.submodules = true;
  auto co = cache_.checkout(url, app_sha, out("rec"), options);
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_TRUE(fs::exists(out("rec") / "vendor/lib/lib.txt"));
  EXPECT_TRUE(fs::exists(out("rec") / "vendor/lib/deps/leaf/leaf.txt"));
  EXPECT_EQ(git(out("rec") / "vendor/lib", {"rev-parse", "HEAD"}), lib_sha);
  EXPECT_EQ(git(out("rec") / "vendor/lib/deps/leaf", {"rev-parse", "HEAD"}), leaf_sha);
  EXPECT_EQ(co->object_dirs.size(), 3u);
  EXPECT_TRUE(fs::exists(cache_.mirror_path(daemon_.url("lib.git"))));
  EXPECT_TRUE(fs::exists(cache_.mirror_path(daemon_.url("leaf.git"))));
  // The superproject sees its submodule at the recorded commit.
  EXPECT_EQ(git(out("rec"), {"status", "--porcelain"}), "");
}

}  // namespace
}  // namespace sandci::git
