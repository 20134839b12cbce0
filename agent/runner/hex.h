#pragma once
// Lower-case hex of digests, for the runner's content hashes (hashFiles(), cache ids).
#include <cstddef>
#include <string>

namespace sandci::agent {

// Two lower-case hex digits per byte.
inline std::string lower_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

}  // namespace sandci::agent
