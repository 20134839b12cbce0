#pragma once
// A re-run of some jobs: the run names them by job key ("<workflow file>/<job name>",
// as the store's JobRecord.key), the engine selects by job id. Both plans come from
// the same commit, so the mapping is made on a full plan of that commit.
#include <expected>
#include <string>
#include <vector>

#include "agent/runner/run_engine.h"

namespace sandci::agent::server {

// The ids of the jobs whose keys are in `keys`, per workflow file of `full`, and the
// keys found in no workflow of `full`.
struct KeySelection {
  std::vector<std::pair<std::string, std::string>> file_and_job_id;  // in plan order, no repeats
  std::vector<std::string> unknown_keys;
};
KeySelection select_job_keys(const PreparedRun& full, const std::vector<std::string>& keys);

// prepare_run() limited to the jobs named by `only_jobs` (and the jobs they need);
// empty `only_jobs`: exactly prepare_run(source, trigger). Workflows that have none of
// the jobs are left out. A job id shared by two workflows is selected in each workflow
// that has one of the keys (RunSelection is by id across workflows); a matrix job
// re-runs all its combinations. None of the keys in this commit's workflows is a
// selection error naming them. `actions` fetches remote reusable workflows (may be null).
std::expected<PreparedRun, PrepareError> prepare_selected_run(const RunSource& source,
                                                               const RunTrigger& trigger,
                                                               const std::vector<std::string>& only_jobs,
                                                               ActionSource* actions = nullptr);

}  // namespace sandci::agent::server
