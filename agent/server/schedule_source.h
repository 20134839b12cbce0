#pragma once
// Reads what a repository's default branch schedules, through the agent's mirror
// cache as the queue worker fetches: fetch, resolve refs/heads/<default_branch>,
// check that commit out into a scratch folder, load its workflows, list their cron
// lines. A workflow file with errors is left out (a push of it reports them).
#include <expected>
#include <filesystem>
#include <string>

#include "agent/config/agent_config.h"
#include "agent/server/schedule_runner.h"
#include "git/mirror_cache.h"

namespace sandci::agent::server {

class ScheduleSource {
 public:
  // Mirrors live in `mirrors_dir` (shared with the worker: fetches are serialised per
  // mirror); checkouts go to fresh folders under `scratch_dir`, removed after reading.
  ScheduleSource(const std::filesystem::path& mirrors_dir, std::filesystem::path scratch_dir);

  // The snapshot of `repo`'s default branch fetched from `clone_url`; an error names
  // the step that failed (fetch, no such branch, checkout).
  std::expected<ScheduleSnapshot, std::string> read(const config::RepositoryConfig& repo,
                                                    const std::string& clone_url);

 private:
  git::MirrorCache mirrors_;
  std::filesystem::path scratch_dir_;
};

}  // namespace sandci::agent::server
