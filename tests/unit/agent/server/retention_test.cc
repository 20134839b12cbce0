// Retention's decisions (which runs, which mirrors), pure; and compressed job logs on
// real files.
#include "agent/server/retention.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/server/log_files.h"
#include "git/url.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;
using store::RunState;

constexpr std::int64_t kDay = 24LL * 3600 * 1000;
constexpr std::int64_t kNow = 1000 * kDay;

RunUsage usage(std::int64_t id, RunState state, std::int64_t finished_ms, std::uint64_t bytes, bool expired = false) {
  return RunUsage{.id = id, .state = state, .finished_ms = finished_ms, .bytes = bytes, .expired = expired};
}

std::vector<std::int64_t> ids(const RetentionPlan& plan) {
  std::vector<std::int64_t> out;
  for (const auto& r : plan.removals) out.push_back(r.id);
  return out;
}

RetentionPolicy policy(std::int64_t days, std::uint64_t budget, bool keep_summary = true) {
  return RetentionPolicy{.max_age_ms = days * kDay, .budget_bytes = budget, .keep_summary = keep_summary};
}

TEST(PlanRetention, RemovesFinishedRunsOlderThanTheAgeOnly) {
  const auto plan = plan_retention({usage(1, RunState::success, kNow - 31 * kDay, 10),
                                    usage(2, RunState::failure, kNow - 29 * kDay, 10),
                                    usage(3, RunState::cancelled, kNow - 40 * kDay, 10)},
                                   policy(30, 1 << 20), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(plan.removals[0].reason, RemovalReason::age);
  EXPECT_EQ(plan.bytes_before, 30u);
  EXPECT_EQ(plan.bytes_after, 10u);
}

TEST(PlanRetention, ExactlyAtTheAgeIsKept) {
  const auto plan = plan_retention({usage(1, RunState::success, kNow - 30 * kDay, 10)}, policy(30, 100), kNow);
  EXPECT_TRUE(plan.removals.empty());
}

TEST(PlanRetention, OverTheBudgetRemovesOldestFinishedFirstUntilItFits) {
  // 4 runs of 400 bytes, budget 1000: the two oldest go (1600 -> 800).
  const auto plan = plan_retention({usage(4, RunState::success, kNow - 1000, 400),
                                    usage(2, RunState::success, kNow - 3000, 400),
                                    usage(3, RunState::error, kNow - 2000, 400),
                                    usage(1, RunState::failure, kNow - 4000, 400)},
                                   policy(30, 1000), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(plan.removals[0].reason, RemovalReason::budget);
  EXPECT_EQ(plan.bytes_after, 800u);
}

TEST(PlanRetention, SameFinishTimeGoesBySmallerIdFirst) {
  const auto plan = plan_retention({usage(9, RunState::success, kNow - 10, 600), usage(5, RunState::success, kNow - 10, 600)},
                                   policy(30, 1000), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{5}));
}

TEST(PlanRetention, RunsNotFinishedAreNeverRemovedThoughTheyCount) {
  // The running run alone is over budget; the old queued one is over age: neither goes,
  // and the finished ones all go to get as close to the budget as possible.
  const auto plan = plan_retention({usage(1, RunState::queued, kNow - 90 * kDay, 100),
                                    usage(2, RunState::running, kNow - 50 * kDay, 5000),
                                    usage(3, RunState::success, kNow - 100, 300),
                                    usage(4, RunState::failure, kNow - 50, 300)},
                                   policy(30, 1000), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(plan.bytes_after, 5100u);
}

TEST(PlanRetention, AgeAndBudgetRemovalsComeOutOldestFirst) {
  const auto plan = plan_retention({usage(1, RunState::success, kNow - 40 * kDay, 10),
                                    usage(2, RunState::success, kNow - 3 * kDay, 700),
                                    usage(3, RunState::success, kNow - 35 * kDay, 10),
                                    usage(4, RunState::success, kNow - 1 * kDay, 700)},
                                   policy(30, 1000), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{1, 3, 2}));
  EXPECT_EQ(plan.removals[0].reason, RemovalReason::age);
  EXPECT_EQ(plan.removals[2].reason, RemovalReason::budget);
}

TEST(PlanRetention, ExpiredSummariesStayWhenRowsAreKeptAndGoWhenRemoved) {
  const std::vector<RunUsage> runs{usage(1, RunState::success, kNow - 60 * kDay, 0, true),
                                   usage(2, RunState::success, kNow - 10 * kDay, 0, true)};
  EXPECT_TRUE(plan_retention(runs, policy(30, 1000, true), kNow).removals.empty());
  EXPECT_EQ(ids(plan_retention(runs, policy(30, 1000, false), kNow)), (std::vector<std::int64_t>{1}));
}

TEST(PlanRetention, EmptyRunsAreNotRemovedForTheBudget) {
  const auto plan = plan_retention({usage(1, RunState::success, kNow - 10, 0), usage(2, RunState::success, kNow - 5, 2000)},
                                   policy(30, 1000), kNow);
  EXPECT_EQ(ids(plan), (std::vector<std::int64_t>{2}));
}

TEST(PlanRetention, UnderBudgetAndYoungRemovesNothing) {
  const auto plan = plan_retention({usage(1, RunState::success, kNow - 10, 500)}, policy(30, 1000), kNow);
  EXPECT_TRUE(plan.removals.empty());
  EXPECT_EQ(plan.bytes_after, 500u);
}

TEST(RetentionPolicyFromConfig, ConvertsDaysAndMebibytes) {
  config::RetentionConfig config;
  config.max_age_days = 2;
  config.disk_budget_mib = 3;
  config.keep_rows = config::KeepRows::kRemove;
  const auto p = retention_policy(config);
  EXPECT_EQ(p.max_age_ms, 2 * kDay);
  EXPECT_EQ(p.budget_bytes, 3u << 20);
  EXPECT_FALSE(p.keep_summary);
}

store::RunSummary summary(std::int64_t id, std::string repository, std::string clone_url, RunState state) {
  store::RunSummary run;
  run.id = id;
  run.repository = std::move(repository);
  run.forge = "github";
  run.clone_url = std::move(clone_url);
  run.state = state;
  return run;
}

TEST(MirrorsInUse, ConfiguredRepositoriesAndTheirRunsAndUnfinishedRuns) {
  config::AgentConfig config;
  config::RepositoryConfig app;
  app.name = "acme/app";
  app.clone_url = "https://git.example.org/acme/app.git";
  config::RepositoryConfig lib;
  lib.name = "acme/lib";  // no clone_url: its webhooks name it
  config.repositories = {app, lib};
  const std::vector<store::RunSummary> runs{
      summary(1, "acme/lib", "https://git.example.org/acme/lib.git", RunState::success),
      summary(2, "ACME/App", "https://git.example.org/fork/app.git", RunState::failure),  // a fork's pull request
      summary(3, "acme/gone", "https://git.example.org/acme/gone.git", RunState::success),
      summary(4, "acme/gone2", "https://git.example.org/acme/gone2.git", RunState::running)};
  const auto names = mirrors_in_use(config, runs);
  EXPECT_EQ(names, (std::set<std::string>{git::mirror_dir_name("https://git.example.org/acme/app.git"),
                                          git::mirror_dir_name("https://git.example.org/acme/lib.git"),
                                          git::mirror_dir_name("https://git.example.org/fork/app.git"),
                                          git::mirror_dir_name("https://git.example.org/acme/gone2.git")}));
}

TEST(StaleMirrors, NamesNotInUseSortedAndNeverDotEntries) {
  EXPECT_EQ(stale_mirrors({"zeta", "alpha", ".tmp-alpha-1", "kept"}, {"kept"}),
            (std::vector<std::string>{"alpha", "zeta"}));
  EXPECT_TRUE(stale_mirrors({"kept"}, {"kept"}).empty());
}

class LogFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "ci" );
  }
  static std::string read_all(std::istream& in) {
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  static void write(const fs::path& file, const std::string& text) { std::ofstream(file, std::ios::binary) << text; }
  TempDir temp_{"sandci-logfiles-"};
  fs::path dir_ = temp_.path();
};

TEST_F(LogFilesTest, CompressedLogReadsBackTheSameBytesAndThePlainFileIsGone) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "2026-11-30T17:00:00Z step " + std::to_string(i) + ": \x1b[32mok\x1b[0m\n";
  const fs::path plain = dir_ / "ci" / "build.log";
  write(plain, text);
  ASSERT_TRUE(compress_log(plain));
  EXPECT_FALSE(fs::exists(plain));
  ASSERT_TRUE(fs::exists(compressed_log_path(plain)));
  EXPECT_LT(fs::file_size(compressed_log_path(plain)), text.size() / 5);
  auto in = open_job_log(plain);
  ASSERT_TRUE(in);
  EXPECT_EQ(read_all(*in), text);
}

TEST_F(LogFilesTest, PlainLogIsReadAsItIs) {
  const fs::path plain = dir_ / "ci" / "test.log";
  write(plain, "line one\nline two\n");
  auto in = open_job_log(plain);
  ASSERT_TRUE(in);
  EXPECT_EQ(read_all(*in), "line one\nline two\n");
}

TEST_F(LogFilesTest, MissingOrDamagedLogOpensNothing) {
  EXPECT_EQ(open_job_log(dir_ / "ci" / "none.log"), nullptr);
  write(dir_ / "ci" / "bad.log.gz", "this is not gzip at all, just text that claims to be");
  EXPECT_EQ(open_job_log(dir_ / "ci" / "bad.log"), nullptr);
  // A compressed log cut short (a disk filled while it was written elsewhere).
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i * 7919) + "\n";
  write(dir_ / "ci" / "cut.log", text);
  ASSERT_TRUE(compress_log(dir_ / "ci" / "cut.log"));
  fs::resize_file(dir_ / "ci" / "cut.log.gz", fs::file_size(dir_ / "ci" / "cut.log.gz") / 2);
  EXPECT_EQ(open_job_log(dir_ / "ci" / "cut.log"), nullptr);
}

TEST_F(LogFilesTest, CompressesEveryLogUnderAFolderAndLeavesOtherFiles) {
  write(dir_ / "ci" / "a.log", "alpha\n");
  fs::create_directories(dir_ / "release");
  write(dir_ / "release" / "b.log", "beta\n");
  write(dir_ / "ci" / "notes.txt", "not a log\n");
  const auto done = compress_logs_under(dir_);
  EXPECT_EQ(done.files, 2u);
  EXPECT_EQ(done.bytes_before, 11u);
  EXPECT_TRUE(fs::exists(dir_ / "ci" / "a.log.gz"));
  EXPECT_TRUE(fs::exists(dir_ / "release" / "b.log.gz"));
  EXPECT_TRUE(fs::exists(dir_ / "ci" / "notes.txt"));
  EXPECT_EQ(compress_logs_under(dir_).files, 0u);
  EXPECT_EQ(compress_logs_under(dir_ / "missing").files, 0u);
  auto in = open_job_log(dir_ / "release" / "b.log");
  ASSERT_TRUE(in);
  EXPECT_EQ(read_all(*in), "beta\n");
}

}  // namespace
}  // namespace sandci::agent::server
