#pragma once
// Shared helpers for the forge unit tests: headers as a case-insensitive map, and the
// payload fixtures under tests/fixtures/forge.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "agent/forge/forge_kind.h"

namespace sandci::agent::forge::testing {

struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                        [](char x, char y) {
                                          return std::tolower(static_cast<unsigned char>(x)) <
                                                 std::tolower(static_cast<unsigned char>(y));
                                        });
  }
};

class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<const std::string, std::string>> values)
      : values_(values) {}
  explicit Headers(const std::vector<std::pair<std::string, std::string>>& values) {
    for (const auto& [name, value] : values) values_[name] = value;
  }

  Headers& set(const std::string& name, std::string value) {
    values_[name] = std::move(value);
    return *this;
  }
  Headers& erase(const std::string& name) {
    values_.erase(name);
    return *this;
  }
  HeaderLookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = values_.find(std::string(name));
      if (it == values_.end()) return std::nullopt;
      return it->second;
    };
  }

 private:
  std::map<std::string, std::string, CaseInsensitiveLess> values_;
};

inline std::string read_fixture(const std::string& relative) {
  const std::string path = std::string(SANDCI_FIXTURES_DIR) + "/forge/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace sandci::agent::forge::testing
