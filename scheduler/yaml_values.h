#pragma once
// Reading YAML the way every file sandci reads wants it (workflow files, the
// agent's configuration): scalars typed by YAML 1.2's core schema, and mappings
// walked in order with string keys, each key once. What is wrong is reported
// through a callback and that entry skipped, so a reader goes on and reports
// every error at once.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace sandci::scheduler {

// How a node is named in messages: "a mapping", "a list", "empty" or "'text'".
std::string describe(const YAML::Node& node);
// Plain (unquoted, untagged) scalars are the ones YAML types.
bool is_plain(const YAML::Node& node);
// Plain true/false scalars; nullopt for anything else.
std::optional<bool> as_bool(const YAML::Node& node);

struct YamlEntry {
  std::string key;
  YAML::Node key_node;  // for locations
  YAML::Node value;
};

// Called with the node a problem is at and a message.
using YamlReport = std::function<void(const YAML::Node& at, const std::string& message)>;

// The entries of mapping `node` (named `what` in messages, e.g. "'jobs'"), in
// order. Reported and left out: `node` not being a mapping, keys that are not
// strings, a key written twice.
std::vector<YamlEntry> yaml_entries(const YAML::Node& node, const std::string& what, const YamlReport& report);

}  // namespace sandci::scheduler
