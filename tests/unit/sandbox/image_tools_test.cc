#include "sandbox/image_tools.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "support/image_fixtures.h"

namespace sandci::sandbox {
namespace {

using sandci::testing::TempDir;
namespace fs = std::filesystem;

TEST(RunToolTest, CapturesOutputAndExitCode) {
  auto r = run_tool({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("out\n"), std::string::npos);
  EXPECT_NE(r->output.find("err\n"), std::string::npos);
}

TEST(RunToolTest, KeepsOnlyTheTailOfLongOutput) {
  auto r = run_tool({"sh", "-c", "seq 1 100000"}, 1000);
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_LE(r->output.size(), 1000u);
  EXPECT_TRUE(r->output.ends_with("99999\n100000\n"));
}

TEST(RunToolTest, MissingProgramIsAnError) {
  auto r = run_tool({"sandci-no-such-program"});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("sandci-no-such-program"), std::string::npos);
}

TEST(TailLinesTest, LastLinesWithoutTrailingNewline) {
  EXPECT_EQ(tail_lines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(tail_lines("a\nb\n", 5), "a\nb");
  EXPECT_EQ(tail_lines("", 3), "");
}

TEST(RemoveTreeTest, NeverFollowsSymlinksOut) {
  TempDir tmp;
  sandci::testing::write_text(tmp / "outside/keep", "keep");
  sandci::testing::write_text(tmp / "tree/a/b/file", "x");
  fs::create_directory_symlink(tmp / "outside", tmp / "tree/a/link");
  EXPECT_FALSE(remove_tree(tmp / "tree"));
  EXPECT_FALSE(fs::exists(tmp / "tree"));
  EXPECT_EQ(sandci::testing::read_text(tmp / "outside/keep"), "keep");
  EXPECT_FALSE(remove_tree(tmp / "does-not-exist"));
}

// What a killed debootstrap leaves: a file system mounted inside its target.
TEST(RemoveTreeTest, DetachesMountsInsideInsteadOfEmptyingThem) {
  TempDir tmp;
  fs::create_directories(tmp / "tree/proc");
  fs::create_directories(tmp / "elsewhere");
  sandci::testing::write_text(tmp / "elsewhere/precious", "keep");
  if (mount((tmp / "elsewhere").c_str(), (tmp / "tree/proc").c_str(), nullptr, MS_BIND, nullptr) != 0)
    GTEST_SKIP() << "cannot bind-mount here (not root?)";
  EXPECT_FALSE(remove_tree(tmp / "tree"));
  umount2((tmp / "tree/proc").c_str(), MNT_DETACH);  // in case the line above failed
  EXPECT_FALSE(fs::exists(tmp / "tree"));
  EXPECT_EQ(sandci::testing::read_text(tmp / "elsewhere/precious"), "keep");
}

}  // namespace
}  // namespace sandci::sandbox
