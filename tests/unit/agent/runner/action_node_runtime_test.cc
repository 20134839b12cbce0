#include "agent/runner/action_node_runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/runner/action_runner.h"
#include "support/temp_dir.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;

TEST(NodeRuntime, LddOutputGivesLibrariesAndTheLoader) {
  auto linked = parse_ldd_output(
      "\tlinux-vdso.so.1 (0x00007ffd)\n"
      "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f40)\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f41)\n"
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f42)\n");
  ASSERT_TRUE(linked) << linked.error();
  ASSERT_EQ(linked->libraries.size(), 2u);
  EXPECT_EQ(linked->libraries[0], "/lib/x86_64-linux-gnu/libstdc++.so.6");
  EXPECT_EQ(linked->libraries[1], "/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(linked->loader, "/lib64/ld-linux-x86-64.so.2");
}

TEST(NodeRuntime, AMissingLibraryIsNamed) {
  auto linked = parse_ldd_output("\tlibnode.so.108 => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x1)\n");
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error(), "the shared library libnode.so.108 is not found");
}

TEST(NodeRuntime, CommandRunsNodeThroughTheMountedLoader) {
  NodeRuntime runtime{"/var/cache/sandci/node/v20.1.0", "v20.1.0", "ld-linux-x86-64.so.2"};
  EXPECT_EQ(runtime.command("/tmp/sandci/node", "/workspace/a/index.js"),
            (std::vector<std::string>{"/tmp/sandci/node/lib/ld-linux-x86-64.so.2", "--library-path",
                                      "/tmp/sandci/node/lib", "/tmp/sandci/node/bin/node", "/workspace/a/index.js"}));
}

TEST(NodeRuntime, HostNodeIsFoundOnThePathOrNamedAsMissing) {
  const sandci::testing::TempDir temp("sandci-node-path-");
  const fs::path& dir = temp.path();
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  std::ofstream(dir / "b" / "nodejs") << "#!/bin/sh\n";
  fs::permissions(dir / "b" / "nodejs", fs::perms(0755));
  std::ofstream(dir / "a" / "node") << "not executable\n";
  auto found = find_host_node((dir / "a").string() + ":" + (dir / "b").string());
  ASSERT_TRUE(found) << found.error();
  EXPECT_EQ(*found, dir / "b" / "nodejs");
  auto missing = find_host_node((dir / "a").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("install Debian's nodejs"), std::string::npos) << missing.error();
}

// The real thing: the host's node copied with its libraries into a runtime
// folder, and that copy started through its own loader on the host.
TEST(NodeRuntime, PreparedFolderRunsNodeThroughItsOwnLoader) {
  auto node = find_host_node(std::getenv("PATH") ? std::getenv("PATH") : "");
  if (!node) GTEST_SKIP() << node.error();
  const sandci::testing::TempDir temp("sandci-node-cache-");
  const fs::path cache = temp.path() / "cache";
  auto runtime = prepare_node_runtime(cache, *node);
  ASSERT_TRUE(runtime) << runtime.error();
  EXPECT_EQ(runtime->dir.parent_path(), cache);
  EXPECT_EQ(runtime->version.front(), 'v');
  EXPECT_TRUE(fs::exists(runtime->dir / "lib" / runtime->loader));
  auto again = prepare_node_runtime(cache, *node);  // found, not rebuilt
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->dir, runtime->dir);
  auto argv = runtime->command(runtime->dir.string(), "-p");
  argv.push_back("process.version");
  std::string command;
  for (const auto& a : argv) command += "'" + a + "' ";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[64] = {};
  const std::size_t n = fread(buf, 1, sizeof buf - 1, p);
  EXPECT_EQ(pclose(p), 0);
  EXPECT_EQ(std::string(buf, n), runtime->version + "\n");
}

TEST(ActionInputs, EnvironmentNamesAreUpperCaseWithSpacesAsUnderscores) {
  EXPECT_EQ(input_env_name("who-to-greet"), "INPUT_WHO-TO-GREET");
  EXPECT_EQ(input_env_name("summary title"), "INPUT_SUMMARY_TITLE");
}

}  // namespace
}  // namespace sandci::agent
