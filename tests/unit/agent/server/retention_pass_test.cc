// One retention pass over a real SQLite store and real folders: which runs' folders go,
// what their rows become, logs left plain by a crash compressed, running runs and
// their logs untouched, stale mirrors removed only once nothing runs, and remote actions'
// trees and mirrors removed when unused for retention.actions_days.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>

#include "agent/runner/remote_actions.h"
#include "agent/server/log_files.h"
#include "agent/server/retention.h"
#include "git/url.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;
using store::RunState;

constexpr std::int64_t kDay = 24LL * 3600 * 1000;

class RetentionPassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::open_sqlite_store(dir_ / "agent.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    config_.state_dir = dir_;
    config::RepositoryConfig repo;
    repo.name = "acme/app";
    repo.clone_url = "git://127.0.0.1:9/acme/app.git";
    config_.repositories = {repo};
    config_.retention.disk_budget_mib = 1;
    config_.retention.max_age_days = 30;
  }
  void TearDown() override {
    store_.reset();
  }

  store::NewRun new_run() const {
    store::NewRun run;
    run.repository = "acme/app";
    run.forge = "github";
    run.event = "push";
    run.ref = "refs/heads/main";
    run.sha = std::string(40, 'a');
    run.clone_url = "git://127.0.0.1:9/acme/app.git";
    run.payload_json = "{}";
    run.trigger = "webhook";
    return run;
  }

  // A run claimed at `at_ms`; finished at `at_ms` + 1 with `state` unless running.
  std::int64_t add_run(std::int64_t at_ms, RunState state) {
    auto id = store_->enqueue_run(new_run(), at_ms);
    EXPECT_TRUE(id);
    auto claimed = store_->claim_next_run("agent-a", 3600'000, at_ms);
    EXPECT_TRUE(claimed && *claimed);
    claims_[*id] = (*claimed)->claim();
    if (state != RunState::running) {
      EXPECT_TRUE(store_->finish_run(claims_[*id], state, "", at_ms + 1).value_or(false));
    }
    return *id;
  }

  fs::path run_dir(std::int64_t id) const { return dir_ / "runs" / std::to_string(id); }

  // `bytes` of noise (it does not compress) at `file`.
  static void write_noise(const fs::path& file, std::size_t bytes) {
    fs::create_directories(file.parent_path());
    std::mt19937 random(static_cast<unsigned>(bytes));
    std::string noise(bytes, '\0');
    for (auto& c : noise) c = static_cast<char>(random());
    std::ofstream(file, std::ios::binary) << noise;
  }

  // The modification time retention reads as a folder's last use.
  static void set_used(const fs::path& path, std::int64_t ms) {
    const timespec at{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
    const timespec times[2] = {at, at};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
  }
  fs::path actions() const { return dir_ / "actions"; }
  fs::path action_tree(const std::string& repository, const std::string& commit) const {
    return actions() / "trees" / repository / commit;
  }
  fs::path action_mirror(const std::string& owner, const std::string& repo) const {
    return actions() / "mirrors" / git::mirror_dir_name(action_repository_url(config_.actions.source, owner, repo));
  }
  // A tree and its repository's mirror, with some bytes, last used at `tree_ms` and `mirror_ms`.
  void add_action(const std::string& owner, const std::string& repo, const std::string& commit,
                  std::int64_t tree_ms, std::int64_t mirror_ms) {
    write_noise(action_tree(owner + "/" + repo, commit) / "dist" / "index.js", 2000);
    set_used(action_tree(owner + "/" + repo, commit), tree_ms);
    write_noise(action_mirror(owner, repo) / "objects" / "pack" / "p.pack", 3000);
    set_used(action_mirror(owner, repo), mirror_ms);
  }

  Retention retention(std::int64_t now_ms) {
    return Retention(config_, *store_, [now_ms] { return now_ms; });
  }

  TempDir temp_{"sandci-retention-"};
  fs::path dir_ = temp_.path();
  std::unique_ptr<store::RunStore> store_;
  config::AgentConfig config_;
  std::map<std::int64_t, store::Claim> claims_;
};

TEST_F(RetentionPassTest, FillsTheBudgetKeepsTheNewestAndNeverTouchesARunningRun) {
  const std::int64_t now = 100 * kDay;
  const auto first = add_run(now - 5000, RunState::success);
  const auto second = add_run(now - 4000, RunState::failure);
  const auto third = add_run(now - 3000, RunState::success);
  const auto running = add_run(now - 2000, RunState::running);
  for (auto id : {first, second, third}) write_noise(run_dir(id) / "artifacts" / "dist" / "app.bin", 400'000);
  write_noise(run_dir(running) / "artifacts" / "big.bin", 300'000);
  // A crash left the third run's log plain; the running job writes its own.
  fs::create_directories(run_dir(third) / "logs");
  std::ofstream(run_dir(third) / "logs" / "build.log") << "compiling\nlinking\ndone\n";
  fs::create_directories(run_dir(running) / "logs");
  std::ofstream(run_dir(running) / "logs" / "test.log") << "still going\n";

  auto report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  // 1.5 MB over a 1 MiB budget: the two oldest go, 700 KB stay.
  EXPECT_EQ(report->removed_runs, 2u);
  EXPECT_EQ(report->expired_rows, 2u);
  EXPECT_EQ(report->deleted_rows, 0u);
  EXPECT_GE(report->freed_bytes, 800'000u);
  EXPECT_FALSE(fs::exists(run_dir(first)));
  EXPECT_FALSE(fs::exists(run_dir(second)));
  EXPECT_TRUE(fs::exists(run_dir(third) / "artifacts" / "dist" / "app.bin"));
  EXPECT_TRUE(fs::exists(run_dir(running) / "artifacts" / "big.bin"));
  for (auto id : {first, second}) {
    auto run = store_->get_run(id);
    ASSERT_TRUE(run && *run);
    EXPECT_EQ((*run)->expired_ms, now);
  }
  EXPECT_EQ(store_->get_run(third).value()->expired_ms, 0);
  EXPECT_EQ(store_->get_run(running).value()->state, RunState::running);

  EXPECT_EQ(report->compressed_logs, 1u);
  EXPECT_FALSE(fs::exists(run_dir(third) / "logs" / "build.log"));
  EXPECT_TRUE(fs::exists(run_dir(third) / "logs" / "build.log.gz"));
  EXPECT_TRUE(fs::exists(run_dir(running) / "logs" / "test.log"));
  EXPECT_FALSE(fs::exists(run_dir(running) / "logs" / "test.log.gz"));
}

TEST_F(RetentionPassTest, RemoveDeletesRowsOfRunsPastTheAge) {
  config_.retention.keep_rows = config::KeepRows::kRemove;
  const std::int64_t now = 100 * kDay;
  const auto old = add_run(now - 31 * kDay, RunState::success);
  const auto young = add_run(now - 29 * kDay, RunState::success);
  write_noise(run_dir(old) / "logs" / "a.log.gz", 1000);
  write_noise(run_dir(young) / "logs" / "a.log.gz", 1000);

  auto report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->deleted_rows, 1u);
  EXPECT_FALSE(store_->get_run(old).value().has_value());
  EXPECT_FALSE(fs::exists(run_dir(old)));
  EXPECT_TRUE(store_->get_run(young).value().has_value());
  EXPECT_TRUE(fs::exists(run_dir(young)));

  // Nothing more to do a second time.
  report = retention(now).run_pass();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->deleted_rows, 0u);
  EXPECT_EQ(report->removed_runs, 0u);
}

TEST_F(RetentionPassTest, StaleMirrorsWaitUntilNoRunIsRunning) {
  const std::int64_t now = 100 * kDay;
  const fs::path mirrors = dir_ / "git";
  const fs::path kept = mirrors / git::mirror_dir_name("git://127.0.0.1:9/acme/app.git");
  const fs::path stale = mirrors / git::mirror_dir_name("git://127.0.0.1:9/acme/retired.git");
  const fs::path building = mirrors / ".tmp-something-1";
  for (const auto& m : {kept, stale, building}) write_noise(m / "objects" / "pack", 100);
  const auto running = add_run(now - 1000, RunState::running);

  auto report = retention(now).run_pass();
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->mirrors_deferred);
  EXPECT_EQ(report->removed_mirrors, 0u);
  EXPECT_TRUE(fs::exists(stale));

  ASSERT_TRUE(store_->finish_run(claims_[running], RunState::success, "", now).value_or(false));
  report = retention(now).run_pass();
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->mirrors_deferred);
  EXPECT_EQ(report->removed_mirrors, 1u);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(kept));
  EXPECT_TRUE(fs::exists(building));
}

TEST_F(RetentionPassTest, ActionsUnusedForTheAgeGoUnlessAnUnfinishedRunUsesThem) {
  config_.actions.source = "https://git.example.org";
  config_.retention.actions_days = 30;
  const std::int64_t now = 100 * kDay;
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c');
  add_action("acme", "old", a, now - 40 * kDay, now - 40 * kDay);
  add_action("acme", "recent", a, now - 2 * kDay, now - 40 * kDay);  // its tree keeps its mirror
  add_action("acme", "recent", c, now - 45 * kDay, now - 40 * kDay);  // an older version of it goes
  add_action("acme", "busy", b, now - 60 * kDay, now - 60 * kDay);    // a run running for 60 days resolved it
  const auto running = add_run(now - 60 * kDay, RunState::running);
  ASSERT_TRUE(store_->put_action_ref({running, "acme/busy", "v1", b, "https://git.example.org/acme/busy", false,
                                      now - 60 * kDay}));
  // Trees being written: one now (kept), one a dead writer left two days ago.
  write_noise(actions() / "trees" / ".tmp-aaaaaaaaaaaa-new" / "action.yml", 10);
  set_used(actions() / "trees" / ".tmp-aaaaaaaaaaaa-new", now - 3600'000);
  write_noise(actions() / "trees" / ".tmp-bbbbbbbbbbbb-old" / "action.yml", 10);
  set_used(actions() / "trees" / ".tmp-bbbbbbbbbbbb-old", now - 2 * kDay);
  // A mirror being built (the mirror cache's own) is never looked at.
  write_noise(actions() / "mirrors" / ".tmp-building-1" / "HEAD", 10);
  set_used(actions() / "mirrors" / ".tmp-building-1", now - 90 * kDay);

  auto report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->removed_action_trees, 2u);
  EXPECT_EQ(report->removed_action_mirrors, 1u);
  EXPECT_EQ(report->removed_action_temporaries, 1u);
  EXPECT_GE(report->action_freed_bytes, 2000u + 2000u + 3000u + 10u);
  EXPECT_FALSE(report->actions_deferred);
  EXPECT_FALSE(fs::exists(action_tree("acme/old", a)));
  EXPECT_FALSE(fs::exists(action_mirror("acme", "old")));
  EXPECT_FALSE(fs::exists(actions() / "trees" / "acme" / "old")) << "a repository with nothing left is forgotten";
  EXPECT_TRUE(fs::exists(action_tree("acme/recent", a) / "dist" / "index.js"));
  EXPECT_FALSE(fs::exists(action_tree("acme/recent", c)));
  EXPECT_TRUE(fs::exists(action_mirror("acme", "recent")));
  EXPECT_TRUE(fs::exists(action_tree("acme/busy", b) / "dist" / "index.js"));
  EXPECT_TRUE(fs::exists(action_mirror("acme", "busy")));
  EXPECT_TRUE(fs::exists(actions() / "trees" / ".tmp-aaaaaaaaaaaa-new" / "action.yml"));
  EXPECT_FALSE(fs::exists(actions() / "trees" / ".tmp-bbbbbbbbbbbb-old"));
  EXPECT_TRUE(fs::exists(actions() / "mirrors" / ".tmp-building-1" / "HEAD"));
  for (const auto& entry : fs::directory_iterator(actions()))
    EXPECT_FALSE(entry.path().filename().string().starts_with(".trash-")) << entry.path();

  // Once the run is over, what it used is as old as its stamps and its record.
  ASSERT_TRUE(store_->finish_run(claims_[running], RunState::success, "", now).value_or(false));
  report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->removed_action_trees, 1u);
  EXPECT_EQ(report->removed_action_mirrors, 1u);
  EXPECT_FALSE(fs::exists(action_tree("acme/busy", b)));
  EXPECT_FALSE(fs::exists(action_mirror("acme", "busy")));
  EXPECT_TRUE(fs::exists(action_tree("acme/recent", a)));
}

TEST_F(RetentionPassTest, AnActionAFinishedRunRecordedRecentlyStaysThoughItsFolderIsOld) {
  // As a tree written before uses were stamped looks: its folder as old as its writing.
  config_.actions.source = "https://git.example.org";
  const std::int64_t now = 100 * kDay;
  const std::string a(40, 'a');
  add_action("acme", "greet", a, now - 200 * kDay, now - 200 * kDay);
  const auto run = add_run(now - 3 * kDay, RunState::success);
  ASSERT_TRUE(store_->put_action_ref({run, "acme/greet", "v1", a, "https://git.example.org/acme/greet", false,
                                      now - 3 * kDay}));
  auto report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->removed_action_trees, 0u);
  EXPECT_EQ(report->removed_action_mirrors, 0u);
  EXPECT_TRUE(fs::exists(action_tree("acme/greet", a) / "dist" / "index.js"));
  // A month and more after that run, it goes.
  report = retention(now + 28 * kDay).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->removed_action_trees, 1u);
  EXPECT_EQ(report->removed_action_mirrors, 1u);
}

TEST_F(RetentionPassTest, ActionsWaitWhileAResolutionHoldsTheCache) {
  config_.actions.source = "https://git.example.org";
  const std::int64_t now = 100 * kDay;
  const std::string a(40, 'a');
  add_action("acme", "old", a, now - 40 * kDay, now - 40 * kDay);
  {
    // What ActionCache::resolve and ::tree hold while they use and stamp a folder.
    ActionCacheLock resolving(actions(), ActionCacheLock::Mode::shared);
    ASSERT_TRUE(resolving.held());
    auto report = retention(now).run_pass();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_TRUE(report->actions_deferred);
    EXPECT_EQ(report->removed_action_trees, 0u);
    EXPECT_TRUE(fs::exists(action_tree("acme/old", a)));
  }
  auto report = retention(now).run_pass();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_FALSE(report->actions_deferred);
  EXPECT_EQ(report->removed_action_trees, 1u);
  EXPECT_FALSE(fs::exists(action_tree("acme/old", a)));
}

}  // namespace
}  // namespace sandci::agent::server
