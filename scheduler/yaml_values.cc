#include "scheduler/yaml_values.h"

#include <set>

namespace sandci::scheduler {

std::string describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "empty";
  return "'" + node.Scalar() + "'";
}

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

std::optional<bool> as_bool(const YAML::Node& node) {
  if (!node.IsScalar() || !is_plain(node)) return std::nullopt;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::vector<YamlEntry> yaml_entries(const YAML::Node& node, const std::string& what, const YamlReport& report) {
  std::vector<YamlEntry> entries;
  if (!node.IsMap()) {
    report(node, what + " must be a mapping, not " + describe(node));
    return entries;
  }
  std::set<std::string> seen;
  for (const auto& pair : node) {
    const YAML::Node& key = pair.first;
    if (!key.IsScalar()) {
      report(key, "keys in " + what + " must be strings");
      continue;
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      report(key, "duplicate key '" + name + "' in " + what);
      continue;
    }
    entries.push_back({name, key, pair.second});
  }
  return entries;
}

}  // namespace sandci::scheduler
