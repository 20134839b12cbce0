#include "scheduler/yaml_source.h"

#include <algorithm>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace sandci::scheduler {
namespace {

// Thrown out of the event handler to stop the parser early.
struct TooDeep {
  YAML::Mark mark;
};
struct SecondDocument {
  YAML::Mark mark;
};
struct TooManyNodes {
  YAML::Mark mark;
};

// First pass over the parser's events, before any node is built: rejects deep
// nesting at the exact place (yaml-cpp's own guard reports line 1 column 1) and
// counts documents and nodes (so yaml-cpp never builds a huge tree).
class ShapeCheck : public YAML::EventHandler {
 public:
  ShapeCheck(int max_depth, std::size_t max_nodes) : max_depth_(max_depth), max_nodes_(max_nodes) {}

  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents > 1) throw SecondDocument{mark};
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void enter(const YAML::Mark& mark) {
    count(mark);
    if (++depth_ > max_depth_) throw TooDeep{mark};
  }
  void count(const YAML::Mark& mark) {
    if (++nodes_ > max_nodes_) throw TooManyNodes{mark};
  }
  int max_depth_;
  std::size_t max_nodes_;
  int depth_ = 0;
  std::size_t nodes_ = 0;
};

// Aliases expanded, a document may nest deeper than it is written, and an alias
// inside the node its anchor names (`a: &x {b: *x}`) makes yaml-cpp build a cycle:
// walks stop at this many levels instead of exhausting the stack.
constexpr int kExpandedDepthFactor = 4;

enum class Budget { ok, too_many_nodes, too_deep };

// Counts nodes as a walk would see them (aliases expanded), stopping at `left`
// nodes or `depth_left` levels. Cost and recursion are bounded by both.
Budget within_budget(const YAML::Node& node, std::size_t& left, int depth_left) {
  if (left == 0) return Budget::too_many_nodes;
  if (depth_left == 0) return Budget::too_deep;
  --left;
  Budget result = Budget::ok;
  if (node.IsSequence()) {
    for (const auto& child : node)
      if ((result = within_budget(child, left, depth_left - 1)) != Budget::ok) return result;
  } else if (node.IsMap()) {
    for (const auto& entry : node) {
      if ((result = within_budget(entry.first, left, depth_left - 1)) != Budget::ok) return result;
      if ((result = within_budget(entry.second, left, depth_left - 1)) != Budget::ok) return result;
    }
  }
  return result;
}

std::string clean_message(const YAML::Exception& e) {
  // yaml-cpp's own guard against deep recursion says "bad file"; say what it means.
  if (dynamic_cast<const YAML::DeepRecursion*>(&e)) return "YAML nesting is too deep";
  return e.msg.empty() ? std::string{"invalid YAML"} : e.msg;
}

}  // namespace

SourceLocation YamlSource::at(const YAML::Mark& mark) const {
  if (mark.is_null() || mark.line < 0) return {file_, 0, 0};
  return {file_, mark.line + 1, mark.column + 1};
}

std::optional<YAML::Node> YamlSource::parse(const Limits& limits, Diagnostics& out) const {
  std::string text{text_};
  try {
    std::istringstream stream{text};
    YAML::Parser parser{stream};
    ShapeCheck check{limits.max_depth, limits.max_nodes};
    while (parser.HandleNextDocument(check)) {
    }
    if (check.documents == 0) {
      out.push_back({{file_, 1, 1}, "the file is empty: a workflow needs 'on' and 'jobs'"});
      return std::nullopt;
    }
    YAML::Node root = YAML::Load(text);
    std::size_t budget = limits.max_expanded_nodes;
    const int max_expanded_depth = kExpandedDepthFactor * limits.max_depth;
    switch (within_budget(root, budget, max_expanded_depth + 1)) {
      case Budget::ok:
        break;
      case Budget::too_many_nodes:
        out.push_back({{file_, 1, 1},
                       "the document has more than " + std::to_string(limits.max_expanded_nodes) +
                           " nodes once aliases are expanded (an alias bomb?)"});
        return std::nullopt;
      case Budget::too_deep:
        out.push_back({{file_, 1, 1},
                       "YAML nesting is deeper than " + std::to_string(max_expanded_depth) +
                           " levels once aliases are expanded (an alias inside its own anchor?)"});
        return std::nullopt;
    }
    return root;
  } catch (const TooDeep& e) {
    out.push_back({at(e.mark), "YAML nesting is deeper than " +
                                   std::to_string(limits.max_depth) + " levels"});
  } catch (const TooManyNodes& e) {
    out.push_back({at(e.mark), "the document has more than " + std::to_string(limits.max_nodes) +
                                   " YAML nodes"});
  } catch (const SecondDocument& e) {
    out.push_back({at(e.mark), "a workflow file must hold exactly one YAML document"});
  } catch (const YAML::Exception& e) {
    out.push_back({at(e.mark), "invalid YAML: " + clean_message(e)});
  } catch (const std::exception& e) {
    out.push_back({{file_, 0, 0}, std::string{"invalid YAML: "} + e.what()});
  }
  return std::nullopt;
}

SourceLocation YamlSource::inside(const YAML::Node& scalar, std::size_t offset) const {
  const YAML::Mark mark = scalar.Mark();
  SourceLocation base = at(mark);
  if (mark.is_null() || mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text_.size())
    return base;
  const std::string& value = scalar.Scalar();
  if (offset > value.size()) return base;
  std::string_view rest = text_.substr(static_cast<std::size_t>(mark.pos));
  const bool one_line = value.find('\n') == std::string::npos;
  if (one_line && rest.starts_with(value)) {
    base.column += static_cast<int>(offset);
    return base;
  }
  const char first = rest.front();
  if (one_line && (first == '"' || first == '\'') && rest.substr(1).starts_with(value) &&
      rest.size() > value.size() + 1 && rest[value.size() + 1] == first) {
    base.column += 1 + static_cast<int>(offset);
    return base;
  }
  if (first == '|') return inside_literal_block(mark, value, offset).value_or(base);
  return base;
}

std::optional<SourceLocation> YamlSource::inside_literal_block(const YAML::Mark& mark,
                                                               std::string_view value,
                                                               std::size_t offset) const {
  // A literal block keeps its lines: value line k is source line (header + 1 + k)
  // with the block's indentation removed. Verify that before trusting it.
  const std::string_view before = value.substr(0, offset);
  const std::size_t k = static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t last_newline = before.rfind('\n');
  const std::size_t line_begin = last_newline == std::string_view::npos ? 0 : last_newline + 1;
  const std::size_t col_in_line = offset - line_begin;
  std::string_view value_line = value.substr(line_begin);
  value_line = value_line.substr(0, value_line.find('\n'));

  std::size_t pos = static_cast<std::size_t>(mark.pos);
  for (std::size_t i = 0; i <= k; ++i) {  // skip the header line, then k lines
    pos = text_.find('\n', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    ++pos;
  }
  std::string_view source_line = text_.substr(pos);
  source_line = source_line.substr(0, source_line.find('\n'));
  if (source_line.ends_with('\r')) source_line.remove_suffix(1);
  if (value_line.empty() || !source_line.ends_with(value_line)) return std::nullopt;
  const std::size_t indent = source_line.size() - value_line.size();
  return SourceLocation{file_, mark.line + 2 + static_cast<int>(k),
                        static_cast<int>(indent + col_in_line) + 1};
}

}  // namespace sandci::scheduler
