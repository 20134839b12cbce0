// `make install`'s files (docs/operations.md, "Install"), put under a DESTDIR:
// each where the systemd unit and the docs name it, with the modes they need.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/cli_support.h"

namespace sandci::testing {
namespace {

namespace fs = std::filesystem;

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(InstallTest, InstallsTheBinaryTheEgressRuntimeTheUnitsAndARootOnlyConfigFolder) {
  CliTempDir dest("sandci-install-");
  const fs::path binary = SANDCI_BINARY;
  const std::string command = "make -s -C " + shell_quote(SANDCI_SOURCE_DIR) + " install-files DESTDIR=" +
                              shell_quote(dest.path().string()) +
                              " BUILD_DIR=" + shell_quote(binary.parent_path().string()) + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  const fs::path root = dest.path();
  EXPECT_EQ(mode_of(root / "usr/local/bin/sandci"), 0755u);
  EXPECT_EQ(fs::file_size(root / "usr/local/bin/sandci"), fs::file_size(binary));
  // The path docs/security.md registers in the engine's daemon.json.
  EXPECT_EQ(mode_of(root / "usr/local/lib/sandci/runsc-egress"), 0755u);
  EXPECT_EQ(mode_of(root / "etc/systemd/system/sandci-agent.service"), 0644u);
  EXPECT_EQ(mode_of(root / "etc/systemd/system/sandci-agent.socket"), 0644u);
  EXPECT_EQ(mode_of(root / "etc/sandci"), 0700u);
  EXPECT_EQ(mode_of(root / "etc/sandci/secrets"), 0700u);
}

TEST(InstallTest, TheUnitRunsTheBinaryWhereInstallPutsIt) {
  std::ifstream in(fs::path(SANDCI_SOURCE_DIR) / "systemd/sandci-agent.service");
  std::stringstream text;
  text << in.rdbuf();
  const std::string unit = text.str();
  EXPECT_NE(unit.find("ExecStart=/usr/local/bin/sandci serve"), std::string::npos) << unit;
}

}  // namespace
}  // namespace sandci::testing
