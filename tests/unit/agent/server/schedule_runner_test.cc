// ScheduleRunner's decisions with a fake clock and a fake reader of the default
// branch, over a real SQLite store in a temp dir: when runs are queued, that a fire
// time queues one run even across restarts, and what the runs carry.
#include "agent/server/schedule_runner.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;
using nlohmann::json;
using scheduler::CronSchedule;

std::int64_t ms_at(std::string_view utc) {
  auto t = scheduler::parse_utc(utc);
  if (!t) throw std::runtime_error("bad time in test");
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

ScheduledCron cron(const std::string& workflow, std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  if (!parsed) throw std::runtime_error("bad cron in test");
  return {workflow, *parsed};
}

class ScheduleRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::RepositoryConfig repo;
    repo.name = "alice/hello";
    repo.forge = config::Forge::kGitea;
    repo.clone_url = "git://127.0.0.1/alice/hello";
    repo.default_branch = "trunk";
    config_.repositories.push_back(repo);
    config::RepositoryConfig quiet = repo;
    quiet.name = "alice/quiet";
    quiet.events = {config::RepositoryEvent::kPush};  // no schedules
    config_.repositories.push_back(quiet);
    open_store();
    snapshot_.sha = std::string(40, 'a');
    snapshot_.clone_url = repo.clone_url;
    snapshot_.crons = {cron(".github/workflows/nightly.yml", "0 3 * * *")};
  }
  void TearDown() override {
    runner_.reset();
    store_.reset();
  }

  void open_store() {
    runner_.reset();
    store_.reset();
    auto store = store::open_sqlite_store(dir_ / "agent.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }

  // A runner as a fresh agent start makes it (the store is kept).
  ScheduleRunner& runner() {
    if (!runner_)
      runner_ = std::make_unique<ScheduleRunner>(
          config_, *store_,
          [this](const config::RepositoryConfig& repo, const std::string& url)
              -> std::expected<ScheduleSnapshot, std::string> {
            reads_.push_back(repo.name + " " + url);
            if (!read_error_.empty()) return std::unexpected(read_error_);
            return snapshot_;
          },
          [this] { return now_; }, [this](std::int64_t id) { queued_.push_back(id); });
    return *runner_;
  }

  std::int64_t tick_at(std::string_view utc) {
    now_ = ms_at(utc);
    return runner().tick();
  }

  store::RunRecord run(std::size_t i) { return store_->get_run(queued_.at(i)).value().value(); }

  TempDir temp_{"sandci-schedules-"};
  fs::path dir_ = temp_.path();
  config::AgentConfig config_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<ScheduleRunner> runner_;
  ScheduleSnapshot snapshot_;
  std::string read_error_;
  std::int64_t now_ = 0;
  std::vector<std::string> reads_;
  std::vector<std::int64_t> queued_;
};

TEST(DueFire, LatestMissedTimeOrNone) {
  auto hourly = CronSchedule::parse("15 * * * *").value();
  auto t = [](std::string_view s) { return *scheduler::parse_utc(s); };
  EXPECT_FALSE(due_fire(hourly, t("2024-05-01T10:15Z"), t("2024-05-01T11:14:59Z")));
  EXPECT_EQ(due_fire(hourly, t("2024-05-01T10:15Z"), t("2024-05-01T11:15Z")), t("2024-05-01T11:15Z"));
  // Three fire times missed: only the latest is due.
  EXPECT_EQ(due_fire(hourly, t("2024-05-01T10:15Z"), t("2024-05-01T13:40Z")), t("2024-05-01T13:15Z"));
}

TEST_F(ScheduleRunnerTest, AFirstSightingWaitsForTheNextFireTime) {
  const std::int64_t next = tick_at("2024-05-01T10:00Z");
  EXPECT_TRUE(queued_.empty()) << "03:00 today passed before the schedule was seen";
  EXPECT_EQ(next, ms_at("2024-05-01T10:05Z")) << "the next read of the branch comes first";
  EXPECT_EQ(reads_, (std::vector<std::string>{"alice/hello git://127.0.0.1/alice/hello"}))
      << "alice/quiet does not run schedules";
  tick_at("2024-05-02T02:59:59Z");
  EXPECT_TRUE(queued_.empty());
  tick_at("2024-05-02T03:00:00Z");
  ASSERT_EQ(queued_.size(), 1u);
}

TEST_F(ScheduleRunnerTest, TheRunCarriesTheScheduleTheWorkflowAndTheHead) {
  tick_at("2024-05-01T10:00Z");
  snapshot_.sha = std::string(40, 'b');  // pushed since the last read
  tick_at("2024-05-02T03:00:20Z");
  ASSERT_EQ(queued_.size(), 1u);
  const auto r = run(0);
  EXPECT_EQ(r.event, "schedule");
  EXPECT_EQ(r.repository, "alice/hello");
  EXPECT_EQ(r.forge, "gitea");
  EXPECT_EQ(r.ref, "refs/heads/trunk");
  EXPECT_EQ(r.sha, std::string(40, 'b')) << "the branch is read again just before the run is queued";
  EXPECT_EQ(r.clone_url, "git://127.0.0.1/alice/hello");
  EXPECT_EQ(r.trigger, "schedule");
  EXPECT_EQ(r.title, "schedule '0 3 * * *' of .github/workflows/nightly.yml (2024-05-02 03:00 UTC)");
  const json payload = json::parse(r.payload_json);
  EXPECT_EQ(payload["schedule"], "0 3 * * *");
  EXPECT_EQ(payload["workflow"], ".github/workflows/nightly.yml");
  EXPECT_EQ(payload["repository"]["full_name"], "alice/hello");
}

TEST_F(ScheduleRunnerTest, OneRunPerFireTimeEvenAfterARestart) {
  tick_at("2024-05-01T10:00Z");
  tick_at("2024-05-02T03:00:05Z");
  tick_at("2024-05-02T03:00:40Z");
  ASSERT_EQ(queued_.size(), 1u);
  // The agent restarts within the same minute: the store remembers the fire.
  open_store();
  tick_at("2024-05-02T03:00:50Z");
  EXPECT_EQ(queued_.size(), 1u);
  tick_at("2024-05-03T03:00:00Z");
  EXPECT_EQ(queued_.size(), 2u);
}

TEST_F(ScheduleRunnerTest, TimesMissedWhileDownRunOnceAtStart) {
  snapshot_.crons = {cron(".github/workflows/hourly.yml", "30 * * * *")};
  tick_at("2024-05-01T10:00Z");
  tick_at("2024-05-01T10:30Z");
  ASSERT_EQ(queued_.size(), 1u);
  open_store();  // down from 10:31 to 15:10: 11:30 .. 14:30 were missed
  tick_at("2024-05-01T15:10Z");
  ASSERT_EQ(queued_.size(), 2u);
  EXPECT_EQ(run(1).title, "schedule '30 * * * *' of .github/workflows/hourly.yml (2024-05-01 14:30 UTC)");
  tick_at("2024-05-01T15:20Z");
  EXPECT_EQ(queued_.size(), 2u);
  tick_at("2024-05-01T15:30Z");
  EXPECT_EQ(queued_.size(), 3u);
}

TEST_F(ScheduleRunnerTest, EachCronLineOfEachWorkflowFiresOnItsOwn) {
  snapshot_.crons = {cron(".github/workflows/a.yml", "*/10 * * * *"), cron(".github/workflows/a.yml", "0 * * * *"),
                     cron(".github/workflows/b.yml", "0 * * * *")};
  tick_at("2024-05-01T09:55Z");
  EXPECT_EQ(tick_at("2024-05-01T09:58Z"), ms_at("2024-05-01T10:00Z"));
  tick_at("2024-05-01T10:00Z");
  ASSERT_EQ(queued_.size(), 3u);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < 3; ++i) {
    const json payload = json::parse(run(i).payload_json);
    seen.insert(payload["workflow"].get<std::string>() + " " + payload["schedule"].get<std::string>());
  }
  EXPECT_EQ(seen, (std::set<std::string>{".github/workflows/a.yml */10 * * * *", ".github/workflows/a.yml 0 * * * *",
                                         ".github/workflows/b.yml 0 * * * *"}));
  tick_at("2024-05-01T10:10Z");
  EXPECT_EQ(queued_.size(), 4u);
}

TEST_F(ScheduleRunnerTest, ARemovedLineIsForgottenAndStartsAfreshWhenAdded) {
  tick_at("2024-05-01T10:00Z");
  snapshot_.crons.clear();
  tick_at("2024-05-01T10:06Z");  // read again: the line is gone
  EXPECT_EQ(store_->schedule_last_fire({"gitea", "alice/hello", ".github/workflows/nightly.yml", "0 3 * * *"}).value(),
            std::nullopt);
  tick_at("2024-05-03T10:00Z");
  snapshot_.crons = {cron(".github/workflows/nightly.yml", "0 3 * * *")};
  tick_at("2024-05-03T10:06Z");
  EXPECT_TRUE(queued_.empty()) << "the 03:00 fires it was absent for are not run";
  tick_at("2024-05-04T03:00Z");
  EXPECT_EQ(queued_.size(), 1u);
}

TEST_F(ScheduleRunnerTest, ALineRemovedJustBeforeItsTimeDoesNotRun) {
  tick_at("2024-05-01T10:00Z");
  snapshot_.crons = {cron(".github/workflows/nightly.yml", "0 4 * * *")};  // changed, not yet read
  tick_at("2024-05-02T03:00Z");
  EXPECT_TRUE(queued_.empty()) << "the branch is read again before queuing: the 03:00 line is gone";
}

TEST_F(ScheduleRunnerTest, AnUnreadableBranchQueuesNothingAndIsTriedAgainLater) {
  read_error_ = "cannot fetch git://127.0.0.1/alice/hello: connection refused";
  EXPECT_EQ(tick_at("2024-05-01T10:00Z"), ms_at("2024-05-01T10:05Z"));
  tick_at("2024-05-01T10:01Z");
  EXPECT_EQ(reads_.size(), 1u) << "not read again at every pass";
  read_error_.clear();
  tick_at("2024-05-01T10:05Z");
  EXPECT_EQ(reads_.size(), 2u);
  EXPECT_TRUE(queued_.empty());
}

TEST_F(ScheduleRunnerTest, WithoutAConfiguredCloneUrlTheNewestWebhookNamesIt) {
  config_.repositories[0].clone_url.clear();
  tick_at("2024-05-01T10:00Z");
  EXPECT_TRUE(reads_.empty()) << "no URL known yet";
  store::NewRun pushed;
  pushed.repository = "alice/hello";
  pushed.forge = "gitea";
  pushed.event = "push";
  pushed.clone_url = "https://git.example.org/alice/hello.git";
  ASSERT_TRUE(store_->enqueue_run(pushed, ms_at("2024-05-01T10:01Z")));
  tick_at("2024-05-01T10:05Z");
  EXPECT_EQ(reads_, (std::vector<std::string>{"alice/hello https://git.example.org/alice/hello.git"}));
}

}  // namespace
}  // namespace sandci::agent::server
