// The workflow parser's shared helpers: reporting, mappings and scalars.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>

#include "scheduler/did_you_mean.h"
#include "scheduler/expression.h"
#include "scheduler/loader_parser.h"

namespace sandci::scheduler::loader {

bool valid_identifier(std::string_view id) {
  if (id.empty() || !(std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_'))
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::optional<double> as_number(const YAML::Node& node) {
  if (!node.IsScalar() || !is_plain(node)) return std::nullopt;
  const std::string& s = node.Scalar();
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

nlohmann::json to_json(const YAML::Node& node) {
  if (node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    auto array = nlohmann::json::array();
    for (const auto& child : node) array.push_back(to_json(child));
    return array;
  }
  if (node.IsMap()) {
    auto object = nlohmann::json::object();
    for (const auto& entry : node) object[entry.first.Scalar()] = to_json(entry.second);
    return object;
  }
  const std::string& s = node.Scalar();
  if (!is_plain(node)) return s;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
  if (auto b = as_bool(node)) return *b;
  std::int64_t integer = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), integer);
  if (ec == std::errc{} && end == s.data() + s.size()) return integer;
  if (auto d = as_number(node)) return *d;
  return s;
}

// ---- reporting -------------------------------------------------------------------

void WorkflowParser::error(const SourceLocation& where, std::string message) {
  out_.push_back({where, std::move(message)});
  ++errors_;
}

void WorkflowParser::error(const YAML::Node& node, std::string message) {
  error(source_.at(node), std::move(message));
}

void WorkflowParser::note(const SourceLocation& where, std::string message) {
  out_.push_back({where, std::move(message), Severity::note});
}

void WorkflowParser::note(const YAML::Node& node, std::string message) {
  note(source_.at(node), std::move(message));
}

SourceLocation WorkflowParser::where(const Entry& e) const {
  return e.value.IsNull() ? source_.at(e.key_node) : source_.at(e.value);
}

// ---- structure -------------------------------------------------------------------

std::vector<Entry> WorkflowParser::mapping(const YAML::Node& node, const std::string& what,
                                           KeyPlace place) {
  return entries_of(node, what, place);
}

std::vector<Entry> WorkflowParser::mapping(const YAML::Node& node, const std::string& what) {
  return entries_of(node, what, std::nullopt);
}

std::vector<Entry> WorkflowParser::entries_of(const YAML::Node& node, const std::string& what,
                                              std::optional<KeyPlace> place) {
  std::vector<Entry> entries;
  auto report = [this](const YAML::Node& at, const std::string& message) { error(at, message); };
  for (auto& [name, key, value] : yaml_entries(node, what, report)) {
    const KeySpec* spec = place ? find_key(*place, name) : nullptr;
    if (place && !spec) {
      error(key, "unknown key '" + name + "' in " + what +
                     did_you_mean(name, suggestable_keys(*place)));
      continue;
    }
    if (spec && spec->support == KeySupport::refused) {
      error(key, "'" + name + "' in " + what + " is not supported by sandci" +
                     (spec->reason.empty() ? std::string() : ": " + std::string{spec->reason}));
      continue;
    }
    if (spec && spec->support == KeySupport::ignored)
      note(key, "'" + name + "' is ignored: " + std::string{spec->reason});
    entries.push_back({name, key, value, spec});
  }
  return entries;
}

const Entry* WorkflowParser::find(const std::vector<Entry>& entries, std::string_view key) {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

// ---- scalars ---------------------------------------------------------------------

namespace {
// Whether `${{ }}` in an entry's strings is checked; free entries (env values) are.
bool interpolated(const Entry& e) {
  return !e.spec || e.spec->expressions == Expressions::interpolated;
}
}  // namespace

void WorkflowParser::check_expressions(const YAML::Node& scalar) {
  for (const auto& e : check_interpolation(scalar.Scalar()))
    error(source_.inside(scalar, e.offset), "invalid expression: " + e.message);
  check_names(scalar, interpolation_names(scalar.Scalar()));
}

std::optional<std::string> WorkflowParser::string_node(const YAML::Node& node,
                                                       const SourceLocation& where,
                                                       const std::string& what, bool check) {
  if (node.IsNull()) return std::string{};
  if (!node.IsScalar()) {
    error(where, what + " must be a string, not " + describe(node));
    return std::nullopt;
  }
  if (check) check_expressions(node);
  return node.Scalar();
}

std::optional<std::string> WorkflowParser::string_of(const Entry& e) {
  return string_node(e.value, where(e), "'" + e.key + "'", interpolated(e));
}

std::vector<std::string> WorkflowParser::string_list(const Entry& e,
                                                     std::vector<SourceLocation>* locations) {
  std::vector<std::string> list;
  const bool check = interpolated(e);
  auto add = [&](const YAML::Node& node, const SourceLocation& at) {
    if (auto s = string_node(node, at, "each entry of '" + e.key + "'", check)) {
      list.push_back(*s);
      if (locations) locations->push_back(at);
    }
  };
  if (e.value.IsSequence()) {
    for (const auto& item : e.value) add(item, source_.at(item));
  } else if (e.value.IsScalar()) {
    add(e.value, source_.at(e.value));
  } else {
    error(where(e), "'" + e.key + "' must be a string or a list of strings, not " +
                        describe(e.value));
  }
  return list;
}

std::optional<bool> WorkflowParser::bool_of(const Entry& e) {
  auto b = as_bool(e.value);
  if (!b) error(where(e), "'" + e.key + "' must be true or false, not " + describe(e.value));
  return b;
}

std::string WorkflowParser::bool_or_expression(const Entry& e) {
  if (auto b = as_bool(e.value)) return *b ? "true" : "false";
  if (e.value.IsScalar() && e.value.Scalar().find("${{") != std::string::npos) {
    check_expressions(e.value);
    return e.value.Scalar();
  }
  error(where(e), "'" + e.key + "' must be true, false or an expression, not " +
                      describe(e.value));
  return "false";
}

std::optional<double> WorkflowParser::positive_number(const Entry& e) {
  auto n = as_number(e.value);
  if (!n || *n <= 0) {
    error(where(e), "'" + e.key + "' must be a positive number, not " + describe(e.value));
    return std::nullopt;
  }
  return n;
}

StringMap WorkflowParser::string_map(const Entry& e) {
  StringMap map;
  for (const auto& item : mapping(e.value, "'" + e.key + "'")) {
    if (item.key.empty() || item.key.find('=') != std::string::npos) {
      error(item.key_node, "invalid name '" + item.key + "' in '" + e.key + "'");
      continue;
    }
    if (auto value = string_node(item.value, where(item), "'" + e.key + "." + item.key + "'", true))
      map.emplace_back(item.key, *value);
  }
  return map;
}

void WorkflowParser::check_condition(const Entry& e) {
  if (!e.value.IsScalar()) {
    if (!e.value.IsNull())
      error(where(e), "'if' must be a string, not " + describe(e.value));
    return;
  }
  // Validation reads the condition exactly as the runner will evaluate it.
  const std::string& text = e.value.Scalar();
  if (auto problem = sandci::scheduler::check_condition(text)) {
    error(source_.inside(e.value, problem->offset), "invalid expression: " + problem->message);
    return;
  }
  check_names(e.value, condition_names(text));
  // `${{ }}` would run as success(): an empty wrapper is a mistake, not a condition.
  const std::size_t open = text.find("${{");
  if (open != std::string::npos && text.find_first_not_of(" \t\r\n") == open) {
    const std::size_t close = text.find("}}", open + 3);
    if (close != std::string::npos && text.find_first_not_of(" \t\r\n", open + 3) == close)
      error(source_.inside(e.value, open + 3), "invalid expression: expected an expression");
  }
}

}  // namespace sandci::scheduler::loader

namespace sandci::scheduler::loader {

bool WorkflowParser::is_expression(const YAML::Node& node) {
  if (!node.IsScalar()) return false;
  std::string_view text = node.Scalar();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text.starts_with("${{") && text.ends_with("}}") && text.find("${{", 3) == std::string_view::npos;
}

std::string WorkflowParser::expression_of(const Entry& e) {
  check_expressions(e.value);
  return e.value.Scalar();
}

StringMap WorkflowParser::string_map_or_expression(const Entry& e, std::string& expression) {
  if (is_expression(e.value)) {
    expression = expression_of(e);
    return {};
  }
  return string_map(e);
}

}  // namespace sandci::scheduler::loader
