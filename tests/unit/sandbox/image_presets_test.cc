// The image presets: names, lists, and the docs' package table kept equal to them.
#include "sandbox/image_presets.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace sandci::sandbox {
namespace {

TEST(ImagePresets, MinimalComesFirstAndIsTheDefaultImage) {
  ASSERT_FALSE(image_presets().empty());
  EXPECT_EQ(image_presets().front().name, "minimal");
  EXPECT_EQ(image_presets().front().image, "debian:12");
  EXPECT_TRUE(image_presets().front().tools.empty());
  EXPECT_EQ(find_image_preset("nope"), nullptr);
}

TEST(ImagePresets, RunnerCarriesWhatUbuntuWorkflowsCallAndSudo) {
  const ImagePreset* runner = find_image_preset("runner");
  ASSERT_NE(runner, nullptr);
  EXPECT_EQ(runner->image, kRunnerImage);
  std::set<std::string_view> tools(runner->tools.begin(), runner->tools.end());
  for (std::string_view needed : {"build-essential", "cmake", "python3", "nodejs", "curl", "jq", "zip", "sudo"})
    EXPECT_TRUE(tools.contains(needed)) << needed;
  EXPECT_NE(runner->sudoers.find("NOPASSWD"), std::string_view::npos);
}

TEST(ImagePresets, RunnerHasWhatRealBuildsMissedAndLetsPipInstall) {
  const ImagePreset* runner = find_image_preset("runner");
  ASSERT_NE(runner, nullptr);
  std::set<std::string_view> tools(runner->tools.begin(), runner->tools.end());
  for (std::string_view needed : {"clang", "npm", "pipx", "gawk", "libssl-dev", "pkg-config"})
    EXPECT_TRUE(tools.contains(needed)) << needed;
  EXPECT_NE(runner->pip_conf.find("break-system-packages = true"), std::string_view::npos);
  std::set<std::string_view> env(runner->env.begin(), runner->env.end());
  EXPECT_TRUE(env.contains("PIP_BREAK_SYSTEM_PACKAGES=1"));
  const ImagePreset* minimal = find_image_preset("minimal");
  EXPECT_TRUE(minimal->pip_conf.empty());
  EXPECT_TRUE(minimal->env.empty());
}

// docs/images.md lists the runner's packages between two markers; the list there
// must be the list here, so the docs never promise a tool the image lacks.
TEST(ImagePresets, DocsListTheRunnerPackagesExactly) {
  std::ifstream in(std::string(SANDCI_SOURCE_DIR) + "/docs/images.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const auto begin = doc.find("<!-- runner-packages");
  const auto end = doc.find("<!-- /runner-packages -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::set<std::string> documented;
  const auto start = doc.find("-->", begin) + 3;
  const std::string block = doc.substr(start, end - start);
  for (std::size_t at = block.find('`'); at != std::string::npos; at = block.find('`', at)) {
    const auto close = block.find('`', at + 1);
    if (close == std::string::npos) break;
    documented.insert(block.substr(at + 1, close - at - 1));
    at = close + 1;
  }
  std::set<std::string> built;
  for (std::string_view tool : find_image_preset("runner")->tools) built.emplace(tool);
  EXPECT_EQ(documented, built);
}

}  // namespace
}  // namespace sandci::sandbox
