// read_folder_at: a folder's files as a commit has them (what `sandci run` reads
// its workflow files from before the checkout), never the working tree's.
#include <gtest/gtest.h>

#include <fstream>

#include "git/local_repo.h"
#include "git_test_support.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using testing::git;

class ReadFolderAtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = root_.path() / "project";
    git(root_.path(), {"init", "-q", "-b", "main", repo_.string()});
    git(repo_, {"config", "user.email", "dev@example.com"});
    git(repo_, {"config", "user.name", "Dev"});
  }
  void write(const std::string& path, const std::string& text) {
    fs::create_directories((repo_ / path).parent_path());
    std::ofstream(repo_ / path) << text;
  }
  std::string commit() {
    git(repo_, {"add", "-A"});
    git(repo_, {"commit", "-q", "-m", "c"});
    return git(repo_, {"rev-parse", "HEAD"});
  }
  testing::TempDir root_;
  fs::path repo_;
};

TEST_F(ReadFolderAtTest, ReadsTheCommitsFilesOfThatFolderOnly) {
  write(".sandci/workflows/b.yml", "committed b\n");
  write(".sandci/workflows/a.yaml", "committed a\n");
  write(".sandci/workflows/big.yml", std::string(2000, 'x'));
  write(".sandci/workflows/sub/c.yml", "in a sub-folder\n");
  write("other.yml", "elsewhere\n");
  fs::create_symlink("a.yaml", repo_ / ".sandci/workflows/link.yml");
  const std::string sha = commit();
  write(".sandci/workflows/a.yaml", "changed, not committed\n");
  write(".sandci/workflows/new.yml", "not committed\n");

  auto files = read_folder_at(repo_, sha, ".sandci/workflows", 1000);
  ASSERT_TRUE(files) << files.error().to_string();
  ASSERT_TRUE(files->has_value());
  const std::vector<std::pair<std::string, std::string>> want = {{"a.yaml", "committed a\n"},
                                                                 {"b.yml", "committed b\n"}};
  EXPECT_EQ(**files, want);
}

TEST_F(ReadFolderAtTest, AMissingFolderIsNoneAndAnUnknownCommitAnError) {
  write("README", "hello\n");
  const std::string sha = commit();
  auto none = read_folder_at(repo_, sha, ".github/workflows", 1000);
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_FALSE(none->has_value());
  auto file = read_folder_at(repo_, sha, "README", 1000);  // a file, not a folder
  ASSERT_TRUE(file);
  EXPECT_FALSE(file->has_value());
  auto unknown = read_folder_at(repo_, std::string(40, 'a'), ".github/workflows", 1000);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::kShaNotFound);
  auto bad = read_folder_at(repo_, "not-a-sha", ".github/workflows", 1000);
  EXPECT_FALSE(bad);
  auto nowhere = read_folder_at(root_.path() / "nothing-here", sha, ".github/workflows", 1000);
  EXPECT_FALSE(nowhere);
}

}  // namespace
}  // namespace sandci::git
