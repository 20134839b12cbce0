#include "scheduler/runs_on_label.h"

#include <cctype>
#include <utility>

namespace sandci::scheduler {

std::optional<std::string> runs_on_architecture(std::string_view label) {
  static constexpr std::pair<std::string_view, std::string_view> kWords[] = {
      {"arm", "aarch64"},   {"arm64", "aarch64"},   {"aarch64", "aarch64"}, {"x64", "x86_64"},
      {"amd64", "x86_64"},  {"x86_64", "x86_64"},   {"armv7", "armv7"},     {"armv7l", "armv7"},
      {"armhf", "armv7"},   {"riscv64", "riscv64"}, {"ppc64le", "ppc64le"}, {"s390x", "s390x"},
  };
  std::size_t start = 0;
  while (start <= label.size()) {
    std::size_t end = label.find_first_of("-/ ", start);
    if (end == std::string_view::npos) end = label.size();
    std::string word;
    for (char c : label.substr(start, end - start))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [name, arch] : kWords)
      if (word == name) return std::string(arch);
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace sandci::scheduler
