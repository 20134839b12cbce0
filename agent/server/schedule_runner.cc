#include "agent/server/schedule_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace sandci::agent::server {
namespace {

using TimePoint = scheduler::CronSchedule::time_point;

TimePoint to_time(std::int64_t ms) {
  return TimePoint{std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms))};
}

std::int64_t to_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string state_key(const config::RepositoryConfig& repo) {
  return std::string(config::to_string(repo.forge)) + " " + repo.name;
}

store::ScheduleKey key_of(const config::RepositoryConfig& repo, const ScheduledCron& cron) {
  return {std::string(config::to_string(repo.forge)), repo.name, cron.workflow, cron.schedule.text()};
}

}  // namespace

std::optional<TimePoint> due_fire(const scheduler::CronSchedule& schedule, TimePoint last, TimePoint now) {
  TimePoint next = schedule.next_after(last);
  if (next > now) return std::nullopt;
  // Missed fire times collapse into the latest one.
  for (TimePoint later = schedule.next_after(next); later <= now; later = schedule.next_after(later)) next = later;
  return next;
}

ScheduleRunner::ScheduleRunner(config::ConfigRef config, store::RunStore& store, Reader reader, Now now,
                               Queued queued, ScheduleOptions options)
    : config_(config), store_(store), reader_(std::move(reader)), now_(std::move(now)), queued_(std::move(queued)),
      options_(options) {}

ScheduleRunner::~ScheduleRunner() { stop(); }

std::int64_t ScheduleRunner::tick() {
  const std::int64_t now = now_();
  std::int64_t next = now + options_.refresh.count();
  const auto config = config_.get();  // repositories as configured now (SIGHUP reloads them)
  for (const auto& repo : config->repositories) {
    if (!repo.handles(config::RepositoryEvent::kSchedule)) continue;
    next = std::min(next, tick_repository(repo, states_[state_key(repo)], now));
  }
  return next;
}

// Configured, or else the URL the newest webhook of the repository named (never a fork's).
std::string ScheduleRunner::clone_url_for(const config::RepositoryConfig& repo) {
  if (!repo.clone_url.empty()) return repo.clone_url;
  store::RunFilter filter;
  filter.repository = repo.name;
  filter.limit = 20;
  auto runs = store_.list_runs(filter);
  if (!runs) return "";
  for (const auto& run : *runs)
    if (!run.from_fork && !run.clone_url.empty() && run.forge == config::to_string(repo.forge)) return run.clone_url;
  return "";
}

bool ScheduleRunner::refresh(const config::RepositoryConfig& repo, RepositoryState& state, std::int64_t now) {
  const std::string url = clone_url_for(repo);
  auto read = url.empty() ? std::expected<ScheduleSnapshot, std::string>(std::unexpected(
                                "no clone URL yet: set clone_url in the config, or wait for its first webhook"))
                          : reader_(repo, url);
  if (!read) {
    if (read.error() != state.last_error)
      spdlog::warn("event=schedules_unread repository={} branch={} error=\"{}\"", repo.name, repo.default_branch,
                   read.error());
    state.last_error = read.error();
    state.read_ms = now;  // try again after `refresh`, not at every tick
    return false;
  }
  state.last_error.clear();
  if (!state.snapshot || state.snapshot->sha != read->sha)
    spdlog::info("event=schedules_read repository={} branch={} sha={} crons={}", repo.name, repo.default_branch,
                 read->sha, read->crons.size());
  std::vector<store::ScheduleKey> keep;
  for (const auto& cron : read->crons) keep.push_back(key_of(repo, cron));
  if (auto forgotten = store_.forget_schedules(std::string(config::to_string(repo.forge)), repo.name, keep);
      !forgotten)
    spdlog::error("event=schedule_store_failed error=\"{}\"", forgotten.error().message);
  state.snapshot = std::move(*read);
  state.read_ms = now;
  return true;
}

std::optional<std::int64_t> ScheduleRunner::due_now(const store::ScheduleKey& key, const ScheduledCron& cron,
                                                    std::int64_t now) {
  auto last = store_.schedule_last_fire(key);
  if (!last) {
    spdlog::error("event=schedule_store_failed error=\"{}\"", last.error().message);
    return std::nullopt;
  }
  if (!*last) {
    // First sighting: the schedule starts from now, not from times before it existed.
    if (auto seen = store_.schedule_first_seen(key, now); !seen)
      spdlog::error("event=schedule_store_failed error=\"{}\"", seen.error().message);
    return std::nullopt;
  }
  auto fire = due_fire(cron.schedule, to_time(**last), to_time(now));
  if (!fire) return std::nullopt;
  return to_ms(*fire);
}

void ScheduleRunner::fire(const config::RepositoryConfig& repo, const ScheduleSnapshot& snapshot,
                          const ScheduledCron& cron, const store::ScheduleKey& key, std::int64_t fire_ms,
                          std::int64_t now) {
  store::NewRun run;
  run.repository = repo.name;
  run.forge = std::string(config::to_string(repo.forge));
  run.event = "schedule";
  run.ref = "refs/heads/" + repo.default_branch;
  run.sha = snapshot.sha;
  run.clone_url = snapshot.clone_url;
  // GitHub's schedule payload: the cron line and the workflow file, with the repository.
  run.payload_json = nlohmann::json{{"schedule", cron.schedule.text()},
                                    {"workflow", cron.workflow},
                                    {"repository",
                                     {{"full_name", repo.name},
                                      {"default_branch", repo.default_branch},
                                      {"clone_url", snapshot.clone_url}}}}
                         .dump();
  run.trigger = "schedule";
  run.title = "schedule '" + cron.schedule.text() + "' of " + cron.workflow + " (" +
              scheduler::format_utc(to_time(fire_ms)) + ")";
  auto queued = store_.record_schedule_fire(key, fire_ms, run, now);
  if (!queued) {
    spdlog::error("event=schedule_store_failed error=\"{}\"", queued.error().message);
    return;
  }
  if (!*queued) return;  // another pass (or agent) queued this fire time already
  spdlog::info("event=run_queued run={} repository={} sha={} ref={} event=schedule workflow={} cron=\"{}\" fire=\"{}\"",
               **queued, repo.name, snapshot.sha, run.ref, cron.workflow, cron.schedule.text(),
               scheduler::format_utc(to_time(fire_ms)));
  if (queued_) queued_(**queued);
}

std::int64_t ScheduleRunner::next_fire_ms(const store::ScheduleKey& key, const ScheduledCron& cron,
                                          std::int64_t now) {
  auto last = store_.schedule_last_fire(key);
  const std::int64_t from = last && *last ? std::max(**last, now) : now;
  return to_ms(cron.schedule.next_after(to_time(from)));
}

std::int64_t ScheduleRunner::tick_repository(const config::RepositoryConfig& repo, RepositoryState& state,
                                             std::int64_t now) {
  const std::int64_t refresh_ms = options_.refresh.count();
  bool fresh = false;
  if (state.read_ms == 0 || now - state.read_ms >= refresh_ms) fresh = refresh(repo, state, now);
  if (!state.snapshot) return state.read_ms + refresh_ms;
  auto any_due = [&] {
    return std::any_of(state.snapshot->crons.begin(), state.snapshot->crons.end(), [&](const ScheduledCron& cron) {
      return due_now(key_of(repo, cron), cron, now).has_value();
    });
  };
  // A run is queued on the HEAD of the moment, and only for a line still there.
  if (any_due() && !fresh) refresh(repo, state, now);
  for (const auto& cron : state.snapshot->crons) {
    const auto key = key_of(repo, cron);
    if (auto fire_ms = due_now(key, cron, now)) fire(repo, *state.snapshot, cron, key, *fire_ms, now);
  }
  std::int64_t next = state.read_ms + refresh_ms;
  for (const auto& cron : state.snapshot->crons) next = std::min(next, next_fire_ms(key_of(repo, cron), cron, now));
  return next;
}

void ScheduleRunner::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      std::int64_t next = now_() + 1000;
      try {
        next = tick();
      } catch (const std::exception& e) {
        // A bug of ours must not stop the schedules for good: the next pass tries again.
        spdlog::error("event=schedule_internal_error error=\"{}\"", e.what());
      }
      const auto wait = std::clamp<std::int64_t>(next - now_(), 50, options_.longest_sleep.count());
      lock.lock();
      wake_.wait_for(lock, std::chrono::milliseconds(wait), [this] { return stopping_; });
    }
  });
}

void ScheduleRunner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sandci::agent::server
