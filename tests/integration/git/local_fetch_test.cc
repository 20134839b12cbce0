// MirrorCache on local paths (what `sandci run` fetches) and the cancel flag: a new
// mirror of a local repository shares its object files, and a fetch whose cancel
// flag is set stops with a cancellation error and leaves no mirror behind.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>

#include "git/mirror_cache.h"
#include "git_test_support.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using testing::git;
using testing::run;

std::vector<fs::path> pack_files(const fs::path& objects) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(objects / "pack"))
    if (entry.path().extension() == ".pack") out.push_back(entry.path());
  return out;
}

bool temp_mirrors_left(const fs::path& state) {
  if (!fs::exists(state)) return false;
  for (const auto& entry : fs::directory_iterator(state))
    if (entry.path().filename().string().starts_with(".tmp-")) return true;
  return false;
}

class LocalFetchTest : public ::testing::Test {
 protected:
  fs::path state() const { return root_.path() / "state"; }
  testing::TempDir root_;
};

TEST_F(LocalFetchTest, ANewMirrorOfALocalRepositoryLinksItsPacksAndIsComplete) {
  const fs::path src = root_.path() / "project";
  git(root_.path(), {"init", "-q", "-b", "main", src.string()});
  git(src, {"config", "user.email", "dev@example.com"});
  git(src, {"config", "user.name", "Dev"});
  for (int i = 0; i < 5; ++i) {
    std::ofstream(src / ("file" + std::to_string(i) + ".txt")) << "content " << i << "\n";
    git(src, {"add", "."});
    git(src, {"commit", "-q", "-m", "commit " + std::to_string(i)});
  }
  git(src, {"tag", "v1"});
  git(src, {"repack", "-adq"});
  std::ofstream(src / "loose.txt") << "a loose object\n";
  git(src, {"add", "."});
  git(src, {"commit", "-q", "-m", "loose"});
  const std::string head = git(src, {"rev-parse", "HEAD"});

  MirrorCache cache(state());
  auto result = cache.fetch(src.string());
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_TRUE(result->created);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), head);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/tags/v1"}), git(src, {"rev-parse", "v1"}));
  EXPECT_EQ(run({"git", "-C", result->mirror.string(), "fsck", "--connectivity-only"}).status, 0);
  // The source's pack is the mirror's, by a hard link (same file system here).
  const auto source_packs = pack_files(src / ".git" / "objects");
  ASSERT_EQ(source_packs.size(), 1u);
  const fs::path linked = result->mirror / "objects" / "pack" / source_packs.front().filename();
  ASSERT_TRUE(fs::exists(linked));
  struct stat a{}, b{};
  ASSERT_EQ(::stat(source_packs.front().c_str(), &a), 0);
  ASSERT_EQ(::stat(linked.c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);

  // A later commit arrives by an ordinary fetch.
  std::ofstream(src / "later.txt") << "later\n";
  git(src, {"add", "."});
  git(src, {"commit", "-q", "-m", "later"});
  auto again = cache.fetch(src.string());
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(git(again->mirror, {"rev-parse", "refs/heads/main"}), git(src, {"rev-parse", "HEAD"}));
}

TEST_F(LocalFetchTest, AFetchWithItsCancelFlagSetStopsWithACancellation) {
  const fs::path srv = root_.path() / "srv";
  fs::create_directories(srv);
  testing::RepoOnServer repo(srv, "app.git");
  repo.commit_one("first");
  repo.commit_many_files(2000, "big");
  repo.push("HEAD:refs/heads/main");
  testing::GitDaemon daemon(srv);

  // Cancelled while objects arrive, as a SIGINT handler's flag would be.
  std::atomic<bool> cancel{false};
  bool saw_objects = false;
  FetchOptions options;
  options.cancel = &cancel;
  options.on_progress = [&](const FetchProgress& p) {
    if (p.received_objects > 0) {
      saw_objects = true;
      cancel = true;
    }
  };
  MirrorCache cache(state());
  auto result = cache.fetch(daemon.url("app.git"), options);
  ASSERT_FALSE(result) << "the fetch went on after its cancel flag was set";
  EXPECT_TRUE(saw_objects);
  EXPECT_EQ(result.error().kind, ErrorKind::kCancelled) << result.error().to_string();
  EXPECT_NE(result.error().to_string().find("cancelled"), std::string::npos) << result.error().to_string();
  EXPECT_FALSE(fs::exists(cache.mirror_path(daemon.url("app.git"))));
  EXPECT_FALSE(temp_mirrors_left(state()));

  // Already set: nothing starts, for a local path too.
  FetchOptions set;
  set.cancel = &cancel;
  auto local = cache.fetch(repo.work().string(), set);
  ASSERT_FALSE(local);
  EXPECT_EQ(local.error().kind, ErrorKind::kCancelled);
  EXPECT_FALSE(temp_mirrors_left(state()));

  // The flag cleared, the same fetch completes.
  cancel = false;
  auto done = cache.fetch(daemon.url("app.git"));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_EQ(git(done->mirror, {"rev-parse", "refs/heads/main"}), git(repo.work(), {"rev-parse", "HEAD"}));
}

}  // namespace
}  // namespace sandci::git
