#pragma once

// The one temporary folder class of the tests (unit, integration, e2e, bench):
// each suite used to carry its own copy.

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace sandci::testing {

// A fresh folder under the temp dir, removed with everything in it when it goes
// out of scope, so also when the test fails (gtest ends a failed test by
// returning, and its locals and fixture are destroyed as usual).
// The name is <prefix>XXXXXX made by mkdtemp: a leftover folder names the suite
// that made it, and two tests (or two test binaries at once) never share one.
// The folder is made 0755, like the folders the tests made before with
// create_directories: a sandbox's non-root user reads what a test puts in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sandci-test-") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    path_ = tmpl;
    std::filesystem::permissions(path_, std::filesystem::perms(0755), std::filesystem::perm_options::replace);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& relative) const { return path_ / relative; }

  // Writes text to a file under the folder, making its parent folders; returns its path.
  std::filesystem::path write(const std::string& relative, const std::string& text) const {
    std::filesystem::path file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream{file, std::ios::binary} << text;
    return file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace sandci::testing
