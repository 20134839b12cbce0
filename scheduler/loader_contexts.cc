// The workflow parser's context check: each expression may name only the contexts
// (and special functions) GitHub allows at its key, as context_availability.h lists.
#include "scheduler/loader_parser.h"

namespace sandci::scheduler::loader {

WorkflowParser::ScopeGuard WorkflowParser::scoped(std::string_view table_key, std::string path) {
  return ScopeGuard(*this, {find_availability(table_key), std::move(path)});
}

WorkflowParser::ScopeGuard WorkflowParser::job_key_scope(const std::string& job_id,
                                                         const std::string& key) {
  // Keys whose values are mappings take the row of their entries; keys the table
  // does not list (needs, steps, uses, permissions) get no row and are not checked.
  std::string row = "jobs.<job_id>." + key;
  std::string path = "jobs." + job_id + "." + key;
  if (key == "outputs") {
    row += ".<output_id>";
  } else if (key == "with") {
    row += ".<with_id>";
  } else if (key == "secrets") {
    row += ".<secrets_id>";
  } else if (key == "defaults") {
    row += ".run";
    path += ".run";
  } else if (key == "steps") {
    row.clear();  // each step key has its own row
  }
  return scoped(row, std::move(path));
}

WorkflowParser::ScopeGuard WorkflowParser::step_key_scope(const std::string& job_id,
                                                          const std::string& key) {
  return scoped("jobs.<job_id>.steps." + key, "jobs." + job_id + ".steps." + key);
}

void WorkflowParser::check_names(const YAML::Node& scalar, const std::vector<ExpressionName>& names) {
  if (!scope_.row) return;
  for (const auto& name : names)
    if (auto message = unavailable_message(*scope_.row, name, scope_.path))
      error(source_.inside(scalar, name.offset), *std::move(message));
}

}  // namespace sandci::scheduler::loader
