#include "scheduler/action_metadata.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "scheduler/did_you_mean.h"
#include "scheduler/expression.h"
#include "scheduler/uses_ref.h"
#include "scheduler/yaml_source.h"
#include "scheduler/yaml_values.h"

namespace sandci::scheduler {
namespace {

constexpr std::string_view kTopKeys[] = {"name", "description", "author", "inputs", "outputs", "runs", "branding"};
constexpr std::string_view kInputKeys[] = {"description", "required", "default", "deprecationMessage"};
constexpr std::string_view kOutputKeys[] = {"description", "value"};
constexpr std::string_view kCompositeRunsKeys[] = {"using", "steps"};
constexpr std::string_view kNodeRunsKeys[] = {"using", "main", "pre", "post", "pre-if", "post-if"};
constexpr std::string_view kStepKeys[] = {"id",  "name", "if",  "run", "shell", "uses",
                                          "with", "env", "working-directory", "continue-on-error"};
constexpr std::string_view kNodeVersions[] = {"node16", "node20", "node24"};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_id(std::string_view id) {
  if (id.empty() || !(std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_')) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

template <std::size_t N>
std::vector<std::string_view> names(const std::string_view (&list)[N]) {
  return {std::begin(list), std::end(list)};
}

class ActionParser {
 public:
  ActionParser(const YamlSource& source, Diagnostics& out) : source_(source), out_(out) {}

  std::optional<ActionMetadata> parse(const YAML::Node& root) {
    ActionMetadata action;
    action.file = source_.file();
    if (!root.IsMap()) {
      error(root, "an action's metadata must be a mapping with at least 'runs', not " + describe(root));
      return std::nullopt;
    }
    const YAML::Node* runs = nullptr;
    YAML::Node runs_node;
    for (const auto& e : entries(root, "the action", kTopKeys)) {
      if (e.key == "name") action.name = string_of(e);
      else if (e.key == "description") action.description = string_of(e);
      else if (e.key == "inputs") parse_inputs(e, action);
      else if (e.key == "outputs") outputs_entry_ = e;
      else if (e.key == "runs") runs_node = e.value, runs = &runs_node;
      // author and branding mean nothing to a runner.
    }
    if (!runs) error(root, "the action has no 'runs' (how to run it: using: composite, node20, ...)");
    else parse_runs(*runs, action);
    if (outputs_entry_) parse_outputs(*outputs_entry_, action);
    if (errors_ > 0) return std::nullopt;
    return action;
  }

 private:
  void error(const SourceLocation& at, std::string message) {
    out_.push_back({at, std::move(message)});
    ++errors_;
  }
  void error(const YAML::Node& node, std::string message) { error(source_.at(node), std::move(message)); }
  // Nulls carry the mark of the next token: point at their key instead.
  SourceLocation where(const YamlEntry& e) const {
    return e.value.IsNull() ? source_.at(e.key_node) : source_.at(e.value);
  }

  template <std::size_t N>
  std::vector<YamlEntry> entries(const YAML::Node& node, const std::string& what,
                                 const std::string_view (&known)[N]) {
    std::vector<YamlEntry> out;
    for (auto& e : free_entries(node, what)) {
      if (std::find(std::begin(known), std::end(known), e.key) == std::end(known)) {
        error(e.key_node, "unknown key '" + e.key + "' in " + what + did_you_mean(e.key, names(known)));
        continue;
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<YamlEntry> free_entries(const YAML::Node& node, const std::string& what) {
    auto report = [this](const YAML::Node& at, const std::string& message) { error(at, message); };
    return yaml_entries(node, what, report);
  }

  void check_expressions(const YAML::Node& scalar) {
    for (const auto& e : check_interpolation(scalar.Scalar()))
      error(source_.inside(scalar, e.offset), "invalid expression: " + e.message);
  }

  std::string string_of(const YamlEntry& e, bool expressions = true) {
    if (e.value.IsNull()) return {};
    if (!e.value.IsScalar()) {
      error(where(e), "'" + e.key + "' must be a string, not " + describe(e.value));
      return {};
    }
    if (expressions) check_expressions(e.value);
    return e.value.Scalar();
  }

  std::string condition_of(const YamlEntry& e) {
    if (e.value.IsNull()) return {};
    if (!e.value.IsScalar()) {
      error(where(e), "'" + e.key + "' must be a condition, not " + describe(e.value));
      return {};
    }
    if (auto problem = check_condition(e.value.Scalar()))
      error(source_.inside(e.value, problem->offset), "invalid condition: " + problem->message);
    return e.value.Scalar();
  }

  StringMap string_map(const YamlEntry& e) {
    StringMap map;
    for (const auto& item : free_entries(e.value, "'" + e.key + "'")) {
      if (item.key.empty() || item.key.find('=') != std::string::npos) {
        error(item.key_node, "invalid name '" + item.key + "' in '" + e.key + "'");
        continue;
      }
      if (!item.value.IsNull() && !item.value.IsScalar()) {
        error(item.value, "'" + e.key + "." + item.key + "' must be a string, not " + describe(item.value));
        continue;
      }
      if (item.value.IsScalar()) check_expressions(item.value);
      map.emplace_back(item.key, item.value.IsScalar() ? item.value.Scalar() : std::string());
    }
    return map;
  }

  void parse_inputs(const YamlEntry& e, ActionMetadata& action) {
    if (e.value.IsNull()) return;
    for (const auto& item : free_entries(e.value, "'inputs'")) {
      // Names with spaces are common (`INPUT_MY_NAME` reads them); only what cannot
      // become an environment variable's name is refused.
      if (item.key.empty() || item.key.find_first_of("=\n\r\t") != std::string::npos ||
          item.key.find('\0') != std::string::npos) {
        error(item.key_node, "invalid input id '" + item.key + "': it cannot be empty or hold '=' or line breaks");
        continue;
      }
      for (const auto& other : action.inputs)
        if (iequals(other.name, item.key))
          error(item.key_node, "input '" + item.key + "' is declared twice (inputs are named regardless of case)");
      ActionInput input;
      input.name = item.key;
      if (!item.value.IsNull())
        for (const auto& f : entries(item.value, "input '" + item.key + "'", kInputKeys)) {
          if (f.key == "description") input.description = string_of(f, false);
          else if (f.key == "deprecationMessage") input.deprecation_message = string_of(f, false);
          else if (f.key == "default") input.default_value = string_of(f);
          else if (f.key == "required") input.required = required_of(f);
        }
      action.inputs.push_back(std::move(input));
    }
  }

  // GitHub's own actions write `required: "true"` as often as `required: true`.
  bool required_of(const YamlEntry& e) {
    if (auto b = as_bool(e.value)) return *b;
    if (e.value.IsScalar() && (e.value.Scalar() == "true" || e.value.Scalar() == "false"))
      return e.value.Scalar() == "true";
    error(where(e), "'required' must be true or false, not " + describe(e.value));
    return false;
  }

  void parse_outputs(const YamlEntry& e, ActionMetadata& action) {
    if (e.value.IsNull()) return;
    const bool composite = iequals(action.using_, "composite");
    for (const auto& item : free_entries(e.value, "'outputs'")) {
      if (!valid_id(item.key)) {
        error(item.key_node, "invalid output id '" + item.key +
                                 "': it must start with a letter or '_' and hold only letters, digits, '-' and '_'");
        continue;
      }
      ActionOutput output;
      output.name = item.key;
      bool has_value = false;
      if (!item.value.IsNull())
        for (const auto& f : entries(item.value, "output '" + item.key + "'", kOutputKeys)) {
          if (f.key == "description") output.description = string_of(f, false);
          else if (f.key == "value") output.value = string_of(f), has_value = true;
        }
      if (composite && !has_value)
        error(item.key_node, "output '" + item.key +
                                 "' of a composite action needs a 'value' (an expression such as "
                                 "${{ steps.<id>.outputs.<name> }})");
      action.outputs.push_back(std::move(output));
    }
  }

  void parse_runs(const YAML::Node& node, ActionMetadata& action) {
    if (!node.IsMap()) {
      error(node, "'runs' must be a mapping with 'using', not " + describe(node));
      return;
    }
    const YAML::Node using_node = node["using"];
    if (!using_node || !using_node.IsScalar()) {
      error(node, "'runs' needs 'using': composite, node16, node20 or node24");
      return;
    }
    const std::string using_ = using_node.Scalar();
    action.using_ = using_;
    if (iequals(using_, "composite")) {
      action.runs = ActionRuns::composite;
      parse_composite(node, action);
    } else if (std::any_of(std::begin(kNodeVersions), std::end(kNodeVersions),
                           [&](std::string_view v) { return iequals(v, using_); })) {
      action.runs = ActionRuns::node;
      parse_node(node, action);
    } else if (iequals(using_, "docker")) {
      error(using_node,
            "'using: docker' is refused: a Docker container action needs its image pulled (or built) and run "
            "as a container, and sandci jobs can do neither (no registry, no container engine in the sandbox); "
            "use a composite or JavaScript action, or run the tool in the job's own image");
    } else if (iequals(using_, "node12")) {
      error(using_node, "'using: node12' is not supported: GitHub retired Node 12; sandci runs node16, node20 and "
                        "node24 actions (all on the runner's Node.js)");
    } else {
      error(using_node, "unknown 'using: " + using_ + "': sandci runs composite, node16, node20 and node24 actions" +
                            did_you_mean(using_, std::vector<std::string_view>{"composite", "node20", "docker"}));
    }
  }

  void parse_composite(const YAML::Node& node, ActionMetadata& action) {
    bool has_steps = false;
    for (const auto& e : entries(node, "'runs' of a composite action", kCompositeRunsKeys)) {
      if (e.key != "steps") continue;
      has_steps = true;
      if (!e.value.IsSequence()) {
        error(where(e), "'steps' must be a list of steps, not " + describe(e.value));
        continue;
      }
      std::map<std::string, int> ids;
      std::size_t index = 0;
      for (const auto& item : e.value) {
        Step step = parse_step(item, ++index);
        if (!step.id.empty()) {
          auto [it, inserted] = ids.emplace(step.id, step.location.line);
          if (!inserted)
            error(item["id"], "duplicate step id '" + step.id + "' (first used at line " +
                                  std::to_string(it->second) + ")");
        }
        action.steps.push_back(std::move(step));
      }
    }
    if (!has_steps) error(node, "a composite action needs 'steps'");
  }

  Step parse_step(const YAML::Node& node, std::size_t index) {
    Step step;
    step.location = source_.at(node);
    const std::string what = "step " + std::to_string(index) + " of the composite action";
    if (!node.IsMap()) {
      error(node, what + " must be a mapping, not " + describe(node));
      return step;
    }
    std::vector<YamlEntry> fields = entries(node, what, kStepKeys);
    auto find = [&](std::string_view key) -> const YamlEntry* {
      for (const auto& f : fields)
        if (f.key == key) return &f;
      return nullptr;
    };
    for (const auto& f : fields) {
      if (f.key == "id") {
        step.id = string_of(f, false);
        if (!valid_id(step.id))
          error(where(f), "invalid step id '" + step.id +
                              "': it must start with a letter or '_' and hold only letters, digits, '-' and '_'");
      } else if (f.key == "name") {
        step.name = string_of(f);
      } else if (f.key == "run") {
        step.run = string_of(f);
      } else if (f.key == "uses") {
        step.uses = string_of(f, false);
        check_uses(f, step.uses);
      } else if (f.key == "with") {
        step.with = string_map(f);
      } else if (f.key == "env") {
        step.env = string_map(f);
      } else if (f.key == "shell") {
        step.shell = string_of(f, false);
      } else if (f.key == "working-directory") {
        step.working_directory = string_of(f);
      } else if (f.key == "if") {
        step.if_condition = condition_of(f);
      } else if (f.key == "continue-on-error") {
        step.continue_on_error = bool_or_expression(f);
      }
    }
    const YamlEntry* run = find("run");
    const YamlEntry* uses = find("uses");
    if (run && uses) error(uses->key_node, what + " has both 'run' and 'uses'; a step does one of them");
    else if (!run && !uses) error(node, what + " needs either 'run' or 'uses'");
    if (run && !find("shell"))
      error(run->key_node, what + " runs a script without 'shell': composite actions must name it "
                                  "(shell: bash, sh, python or a command with {0})");
    if (run)
      if (const YamlEntry* with = find("with")) error(with->key_node, "'with' is only allowed in a step with 'uses'");
    if (uses)
      for (std::string_view key : {"shell", "working-directory"})
        if (const YamlEntry* f = find(key))
          error(f->key_node, "'" + f->key + "' is only allowed in a step with 'run'");
    return step;
  }

  std::string bool_or_expression(const YamlEntry& e) {
    if (auto b = as_bool(e.value)) return *b ? "true" : "false";
    if (e.value.IsScalar() && e.value.Scalar().find("${{") != std::string::npos) {
      check_expressions(e.value);
      return e.value.Scalar();
    }
    error(where(e), "'" + e.key + "' must be true, false or an expression, not " + describe(e.value));
    return "false";
  }

  void check_uses(const YamlEntry& e, const std::string& uses) {
    auto ref = parse_uses(uses);
    if (!ref) return error(where(e), ref.error());
    if (ref->kind == UsesRef::Kind::docker)
      error(where(e), "'uses: " + uses +
                          "' is refused: a docker:// action pulls an image from a registry, which jobs cannot reach");
  }

  void parse_node(const YAML::Node& node, ActionMetadata& action) {
    for (const auto& e : entries(node, "'runs' of a " + action.using_ + " action", kNodeRunsKeys)) {
      if (e.key == "main") action.main = script_of(e);
      else if (e.key == "pre") action.pre = script_of(e);
      else if (e.key == "post") action.post = script_of(e);
      else if (e.key == "pre-if") action.pre_if = condition_of(e);
      else if (e.key == "post-if") action.post_if = condition_of(e);
    }
    if (action.main.empty()) error(node, "a " + action.using_ + " action needs 'main' (the script to run)");
  }

  // A script path inside the action's folder: relative, never climbing out.
  std::string script_of(const YamlEntry& e) {
    std::string path = string_of(e, false);
    if (path.empty()) {
      error(where(e), "'" + e.key + "' must name a script in the action's folder");
      return path;
    }
    std::istringstream parts(path);
    std::string part;
    bool climbs = path.front() == '/';
    while (std::getline(parts, part, '/'))
      if (part == "..") climbs = true;
    if (climbs) {
      error(where(e), "'" + e.key + ": " + path + "' must be a path inside the action's folder");
      return {};
    }
    return path;
  }

  const YamlSource& source_;
  Diagnostics& out_;
  std::size_t errors_ = 0;
  std::optional<YamlEntry> outputs_entry_;  // read once `runs` says which kind it is
};

}  // namespace

const ActionInput* ActionMetadata::find_input(std::string_view wanted) const {
  for (const auto& input : inputs)
    if (iequals(input.name, wanted)) return &input;
  return nullptr;
}

std::optional<ActionMetadata> parse_action_metadata(std::string_view text, const std::string& file,
                                                    Diagnostics& diagnostics, const LoaderLimits& limits) {
  if (text.size() > limits.max_file_bytes) {
    diagnostics.push_back({{file, 0, 0}, "the file is " + std::to_string(text.size()) +
                                             " bytes; action metadata is limited to " +
                                             std::to_string(limits.max_file_bytes) + " bytes"});
    return std::nullopt;
  }
  YamlSource source{text, file};
  Diagnostics local;
  std::optional<ActionMetadata> action;
  if (auto root = source.parse({limits.max_depth, limits.max_nodes, limits.max_expanded_nodes}, local)) {
    try {
      action = ActionParser(source, local).parse(*root);
    } catch (const std::exception& e) {
      // yaml-cpp conversions should not throw on checked nodes; never let one escape.
      local.push_back({{file, 0, 0}, std::string("internal error while reading the action: ") + e.what()});
      action.reset();
    }
  }
  std::stable_sort(local.begin(), local.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.location.line, a.location.column) < std::tie(b.location.line, b.location.column);
  });
  diagnostics.insert(diagnostics.end(), local.begin(), local.end());
  return action;
}

std::optional<ActionMetadata> load_action_metadata(const std::filesystem::path& dir, const std::string& display_dir,
                                                   Diagnostics& diagnostics, const LoaderLimits& limits) {
  const std::string shown_dir = display_dir.empty() ? dir.string() : display_dir;
  for (std::string_view name : kActionFileNames) {
    const std::filesystem::path path = dir / name;
    const std::string shown = shown_dir + "/" + std::string(name);
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(path, ec);
    if (ec || status.type() == std::filesystem::file_type::not_found) continue;
    if (status.type() != std::filesystem::file_type::regular) {
      diagnostics.push_back({{shown, 0, 0}, "is not a regular file (a symbolic link or a folder); refused"});
      return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    std::string text;
    text.resize(limits.max_file_bytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) {
      diagnostics.push_back({{shown, 0, 0}, "cannot be read"});
      return std::nullopt;
    }
    return parse_action_metadata(text, shown, diagnostics, limits);
  }
  diagnostics.push_back({{shown_dir, 0, 0}, "holds no action.yml or action.yaml: it is not an action"});
  return std::nullopt;
}

std::string first_error(const Diagnostics& diagnostics) {
  std::size_t count = 0;
  std::string first;
  for (const auto& d : diagnostics) {
    if (d.severity != Severity::error) continue;
    if (count++ == 0) first = d.to_string();
  }
  if (count > 1)
    first += " (and " + std::to_string(count - 1) + " more error" + (count > 2 ? "s" : "") + ")";
  return first;
}

}  // namespace sandci::scheduler
