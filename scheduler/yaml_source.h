#pragma once
// Safe YAML parsing for workflow files and mapping positions inside scalars back
// to the file. yaml-cpp parses into shared nodes (an alias is not copied), but a
// walk over the tree expands aliases; the limits here keep hostile input cheap.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "scheduler/diagnostic.h"

namespace sandci::scheduler {

class YamlSource {
 public:
  YamlSource(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

  struct Limits {
    int max_depth;
    std::size_t max_nodes;           // as written
    std::size_t max_expanded_nodes;  // aliases expanded
  };

  // Parses the single document in the text. On a syntax error, a limit exceeded,
  // or anything but exactly one document, returns nullopt and appends a diagnostic.
  std::optional<YAML::Node> parse(const Limits& limits, Diagnostics& out) const;

  // The location of a node (1-based line and column).
  SourceLocation at(const YAML::Mark& mark) const;
  SourceLocation at(const YAML::Node& node) const { return at(node.Mark()); }

  // The location of byte `offset` of a scalar's value. Exact for plain and quoted
  // one-line scalars (without escapes) and for literal blocks (`|`); otherwise the
  // scalar's own location.
  SourceLocation inside(const YAML::Node& scalar, std::size_t offset) const;

  const std::string& file() const { return file_; }

 private:
  std::optional<SourceLocation> inside_literal_block(const YAML::Mark& mark,
                                                     std::string_view value,
                                                     std::size_t offset) const;

  std::string_view text_;
  std::string file_;
};

}  // namespace sandci::scheduler
