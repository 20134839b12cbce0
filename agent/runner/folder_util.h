#pragma once
// Small helpers for the folders the runner and retention manage: how much a
// folder holds, and a fresh name for a folder being written or removed.
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

namespace sandci::agent {

// Bytes of the regular files under `dir`, not through symbolic links (0 when it is missing).
inline std::uint64_t folder_bytes(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec) && !it->is_symlink(size_ec)) {
      const auto size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

// Eight random lower-case letters and digits: a folder name nobody else picks.
inline std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < 8; ++i) out += kChars[rng() % (sizeof kChars - 1)];
  return out;
}

}  // namespace sandci::agent
