#pragma once
// The agent's own trigger: the `schedule:` workflows of each repository's default
// branch. For every cron line of every workflow there, at each fire time, one run
// with event `schedule` is queued on the branch's HEAD (github.event.schedule = the
// cron line, github.event.workflow = the file; the worker runs only that workflow).
//
// Fire times, decided against the store so that restarts change nothing:
//  - A cron line first seen at time T fires at its first time after T (adding a
//    schedule never runs it for times before it existed).
//  - The last fire time handled is recorded in the store in the same transaction
//    that queues its run: a fire time never queues two runs, even across restarts or
//    two agents on one store.
//  - Fire times missed while the agent was down run ONCE when it is back (as the
//    latest missed time), not once per missed time.
//  - A cron line or workflow removed from the branch is forgotten; added again, it
//    starts afresh.
// The workflows are read again at most every `refresh` and always just before a run
// is queued, so the run is for the HEAD of that moment and only if the line is still
// there.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/store/run_store.h"
#include "scheduler/cron.h"

namespace sandci::agent::server {

// The fire time to run now: the latest fire time of `schedule` after `last` and at or
// before `now` (minute precision), or nullopt when none has come since `last`.
std::optional<scheduler::CronSchedule::time_point> due_fire(const scheduler::CronSchedule& schedule,
                                                            scheduler::CronSchedule::time_point last,
                                                            scheduler::CronSchedule::time_point now);

// One cron line of one workflow at the default branch's HEAD.
struct ScheduledCron {
  std::string workflow;  // the file, relative to the repository root: .github/workflows/nightly.yml
  scheduler::CronSchedule schedule;
};

// What a repository's default branch schedules, read at one commit.
struct ScheduleSnapshot {
  std::string sha;       // the branch's HEAD
  std::string clone_url;  // where it was read from (the runs fetch it there too)
  std::vector<ScheduledCron> crons;
};

struct ScheduleOptions {
  std::chrono::milliseconds refresh{std::chrono::minutes(5)};
  std::chrono::milliseconds longest_sleep{std::chrono::seconds(30)};  // clocks may jump
};

class ScheduleRunner {
 public:
  using Now = std::function<std::int64_t()>;  // ms since the epoch (UTC)
  // Reads a repository's scheduled workflows at its default branch's HEAD, from
  // `clone_url`; an error says why (fetch failed, no such branch...).
  using Reader = std::function<std::expected<ScheduleSnapshot, std::string>(const config::RepositoryConfig& repo,
                                                                           const std::string& clone_url)>;
  // Called with the id of each run queued.
  using Queued = std::function<void(std::int64_t)>;

  // Schedules run for the repositories of `config` that handle RepositoryEvent::kSchedule.
  ScheduleRunner(config::ConfigRef config, store::RunStore& store, Reader reader, Now now,
                 Queued queued, ScheduleOptions options = {});
  ~ScheduleRunner();  // stop()

  // One pass over every repository at now(): reads what needs reading, queues what is
  // due. Returns when the next pass is needed (ms since the epoch). Not thread-safe
  // with itself: start() calls it from one thread; tests call it directly.
  std::int64_t tick();

  // A thread that calls tick() until stop(), sleeping in between.
  void start();
  void stop();

 private:
  struct RepositoryState {
    std::optional<ScheduleSnapshot> snapshot;
    std::int64_t read_ms = 0;  // when snapshot was read; 0: never
    std::string last_error;  // logged once until it changes
  };

  std::string clone_url_for(const config::RepositoryConfig& repo);
  std::int64_t tick_repository(const config::RepositoryConfig& repo, RepositoryState& state, std::int64_t now);
  bool refresh(const config::RepositoryConfig& repo, RepositoryState& state, std::int64_t now);
  // The fire time due for `cron` now, recording a first sighting; nullopt when none.
  std::optional<std::int64_t> due_now(const store::ScheduleKey& key, const ScheduledCron& cron, std::int64_t now);
  void fire(const config::RepositoryConfig& repo, const ScheduleSnapshot& snapshot, const ScheduledCron& cron,
            const store::ScheduleKey& key, std::int64_t fire_ms, std::int64_t now);
  std::int64_t next_fire_ms(const store::ScheduleKey& key, const ScheduledCron& cron, std::int64_t now);

  config::ConfigRef config_;  // a snapshot per piece of work: the agent reloads it on SIGHUP
  store::RunStore& store_;
  Reader reader_;
  Now now_;
  Queued queued_;
  ScheduleOptions options_;
  std::map<std::string, RepositoryState> states_;  // by "<forge> <repository>"

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sandci::agent::server
