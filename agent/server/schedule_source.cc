#include "agent/server/schedule_source.h"

#include <atomic>

#include "agent/server/remove_on_exit.h"
#include "git/local_repo.h"
#include "scheduler/workflow_loader.h"

namespace sandci::agent::server {
namespace fs = std::filesystem;

ScheduleSource::ScheduleSource(const fs::path& mirrors_dir, fs::path scratch_dir)
    : mirrors_(mirrors_dir), scratch_dir_(std::move(scratch_dir)) {}

std::expected<ScheduleSnapshot, std::string> ScheduleSource::read(const config::RepositoryConfig& repo,
                                                                  const std::string& clone_url) {
  git::CheckoutOptions checkout;
  checkout.fetch.credentials = repo.clone;
  auto fetched = mirrors_.fetch(clone_url, checkout.fetch);
  if (!fetched) return std::unexpected("cannot fetch " + clone_url + ": " + fetched.error().to_string());
  const std::string ref = "refs/heads/" + repo.default_branch;
  auto sha = git::resolve_commit(fetched->mirror, ref);
  if (!sha) return std::unexpected("cannot resolve " + ref + ": " + sha.error().to_string());

  static std::atomic<unsigned> counter{0};
  const fs::path dir = scratch_dir_ / ("schedule-" + std::to_string(counter++));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(scratch_dir_, ec);
  RemoveOnExit remove{dir};
  checkout.fetch_if_missing = false;  // just fetched
  auto checked_out = mirrors_.checkout(clone_url, *sha, dir, checkout);
  if (!checked_out) return std::unexpected("checkout of " + sha->substr(0, 12) + " failed: " + checked_out.error().to_string());

  ScheduleSnapshot snapshot;
  snapshot.sha = *sha;
  snapshot.clone_url = clone_url;
  const auto loaded = scheduler::load_workflows(dir);
  for (const auto& workflow : loaded.workflows) {
    if (!workflow.on.schedule) continue;
    const std::string file = fs::path(workflow.file).lexically_relative(dir).string();
    for (const auto& entry : workflow.on.schedule->crons) snapshot.crons.push_back({file, entry.schedule});
  }
  return snapshot;
}

}  // namespace sandci::agent::server
