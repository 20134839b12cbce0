// The workflow parser's `steps:`: run and uses steps, their ids and keys.
#include <algorithm>
#include <cctype>
#include <map>

#include "scheduler/loader_parser.h"
#include "scheduler/uses_ref.h"

namespace sandci::scheduler::loader {
std::vector<Step> WorkflowParser::parse_steps(const Entry& e, const std::string& job_id) {
  std::vector<Step> steps;
  if (!e.value.IsSequence()) {
    error(where(e), "'steps' must be a list of steps, not " + describe(e.value));
    return steps;
  }
  if (e.value.size() == 0) {
    error(where(e), "'steps' must hold at least one step");
    return steps;
  }
  std::map<std::string, SourceLocation> ids;
  std::size_t index = 0;
  for (const auto& item : flatten_parallel(e.value)) {
    Step step = parse_step(item, index++, job_id);
    if (!step.id.empty()) {
      const SourceLocation at = item.IsMap() && item["id"] ? source_.at(item["id"]) : step.location;
      auto [it, inserted] = ids.emplace(step.id, at);
      if (!inserted)
        error(at, "duplicate step id '" + step.id + "' in job '" + job_id +
                      "' (first used at line " + std::to_string(it->second.line) + ")");
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

// `- parallel: [steps]` groups steps GitHub may run at once. sandci runs them one
// after another, in file order, as if the group were not there: the steps of a
// group are independent by design, so only the time differs.
std::vector<YAML::Node> WorkflowParser::flatten_parallel(const YAML::Node& steps) {
  std::vector<YAML::Node> flat;
  for (const auto& item : steps) {
    const YAML::Node group = item.IsMap() ? item["parallel"] : YAML::Node();
    if (!group.IsDefined()) {
      flat.push_back(item);
      continue;
    }
    if (item.size() != 1) error(item, "a 'parallel' step holds only the 'parallel' list of steps");
    if (!group.IsSequence() || group.size() == 0) {
      error(group, "'parallel' must be a list of steps, not " + describe(group));
      continue;
    }
    for (const auto& key : item)
      if (key.first.Scalar() == "parallel")
        note(key.first, "'parallel' steps run one after another under sandci, in file order");
    for (const auto& inner : group) flat.push_back(inner);
  }
  return flat;
}

Step WorkflowParser::parse_step(const YAML::Node& node, std::size_t index,
                                const std::string& job_id) {
  Step step;
  step.location = source_.at(node);
  const std::string what = "step " + std::to_string(index + 1) + " of job '" + job_id + "'";
  auto fields = mapping(node, what, KeyPlace::step);
  if (!node.IsMap()) return step;
  for (const auto& f : fields) {
    auto scope = step_key_scope(job_id, f.key);
    if (f.key == "id") {
      step.id = string_of(f).value_or("");
      if (!valid_identifier(step.id)) {
        error(where(f), "invalid step id '" + step.id +
                            "': it must start with a letter or '_' and hold only letters, "
                            "digits, '-' and '_'");
      }
    } else if (f.key == "name") {
      step.name = string_of(f).value_or("");
    } else if (f.key == "run") {
      step.run = string_of(f).value_or("");
    } else if (f.key == "uses") {
      step.uses = string_of(f).value_or("");
      step.action = check_uses(f, step.uses);
    } else if (f.key == "with") {
      step.with = string_map(f);
    } else if (f.key == "shell") {
      step.shell = string_of(f).value_or("");
    } else if (f.key == "working-directory") {
      step.working_directory = string_of(f).value_or("");
    } else if (f.key == "env") {
      step.env = string_map_or_expression(f, step.env_expression);
    } else if (f.key == "if") {
      check_condition(f);
      step.if_condition = f.value.IsScalar() ? f.value.Scalar() : "";
    } else if (f.key == "continue-on-error") {
      step.continue_on_error = bool_or_expression(f);
    } else if (f.key == "timeout-minutes") {
      if (is_expression(f.value))
        step.timeout_expression = expression_of(f);
      else
        step.timeout_minutes = positive_number(f);
    }
  }
  const Entry* run = find(fields, "run");
  const Entry* uses = find(fields, "uses");
  if (run && uses)
    error(uses->key_node, what + " has both 'run' and 'uses'; a step does one of them");
  else if (!run && !uses)
    error(node, what + " needs either 'run' or 'uses'");
  if (run)
    if (const Entry* with = find(fields, "with"))
      error(with->key_node, "'with' is only allowed in a step with 'uses'");
  if (uses)
    for (std::string_view key : {"shell", "working-directory"})
      if (const Entry* f = find(fields, key))
        error(f->key_node, "'" + f->key + "' is only allowed in a step with 'run'");
  return step;
}

std::optional<UsesRef> WorkflowParser::check_uses(const Entry& e, const std::string& uses) {
  if (uses.find("${{") != std::string::npos) {
    error(where(e), "'uses' cannot hold an expression: GitHub reads it before any context exists");
    return std::nullopt;
  }
  auto ref = parse_uses(uses);
  if (!ref) {
    error(where(e), ref.error());
    return std::nullopt;
  }
  if (ref->kind == UsesRef::Kind::docker) {
    error(where(e), "'uses: " + uses +
                        "' is not supported by sandci: a docker:// action pulls an image from a registry, "
                        "which jobs cannot reach; run the job in an image from the agent's store with "
                        "'container:' instead");
    return std::nullopt;
  }
  if (ref->kind == UsesRef::Kind::local && ref->path.empty()) {
    error(where(e), "'uses: " + uses + "' must name a folder with an action.yml, like ./.github/actions/setup");
    return std::nullopt;
  }
  return *ref;
}

}  // namespace sandci::scheduler::loader
