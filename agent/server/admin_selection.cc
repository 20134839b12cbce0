#include "agent/server/admin_selection.h"

#include <algorithm>
#include <set>

#include "agent/server/run_reporter.h"

namespace sandci::agent::server {

KeySelection select_job_keys(const PreparedRun& full, const std::vector<std::string>& keys) {
  KeySelection out;
  std::set<std::string> found;
  for (const auto& workflow : full.workflows) {
    for (const auto& concrete : workflow.plan.jobs()) {
      const std::string key = job_key(workflow, concrete.name);
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) continue;
      found.insert(key);
      std::pair<std::string, std::string> pick{workflow.file, workflow.workflow->jobs.at(concrete.job_index).id};
      if (std::find(out.file_and_job_id.begin(), out.file_and_job_id.end(), pick) == out.file_and_job_id.end())
        out.file_and_job_id.push_back(std::move(pick));
    }
  }
  for (const auto& key : keys)
    if (!found.contains(key)) out.unknown_keys.push_back(key);
  return out;
}

std::expected<PreparedRun, PrepareError> prepare_selected_run(const RunSource& source, const RunTrigger& trigger,
                                                               const std::vector<std::string>& only_jobs,
                                                               ActionSource* actions) {
  auto full = prepare_run(source, trigger, {}, actions);
  if (only_jobs.empty() || !full) return full;
  const KeySelection picked = select_job_keys(*full, only_jobs);
  if (picked.file_and_job_id.empty()) {
    std::string names;
    for (const auto& key : only_jobs) names += (names.empty() ? "" : ", ") + key;
    return std::unexpected(PrepareError{PrepareError::Kind::selection,
                                        {"none of the jobs to re-run is in this commit's workflows: " + names}});
  }
  RunSelection selection;
  std::set<std::string> files;
  for (const auto& [file, id] : picked.file_and_job_id) {
    files.insert(file);
    if (std::find(selection.jobs.begin(), selection.jobs.end(), id) == selection.jobs.end())
      selection.jobs.push_back(id);
  }
  auto selected = prepare_run(source, trigger, selection, actions);
  if (!selected) return selected;
  std::erase_if(selected->workflows, [&](const PlannedWorkflow& w) { return !files.contains(w.file); });
  return selected;
}

}  // namespace sandci::agent::server
