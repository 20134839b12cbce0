#pragma once

// Writing and reading whole files, as the tests do all the time.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sandci::testing {

// Writes text to path (binary, replacing it), making its parent folders.
inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// The whole content of path ("" when it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace sandci::testing
