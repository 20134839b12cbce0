// A run's announcement (every job queued, every context pending) over a real store:
// a 1,000-job workflow is announced whole, in one store transaction, so its first
// job does not wait for 2,000 commits in turn.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "agent/runner/run_engine.h"
#include "agent/server/run_reporter.h"
#include "agent/store/sqlite_run_store.h"
#include "unit/agent/store/store_test_support.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;

using store::testing::TempDir;

// `jobs` independent one-step jobs, and a last one that needs the first two.
std::string big_workflow(int jobs) {
  std::string text = "name: big\non: push\njobs:\n";
  for (int i = 0; i < jobs; ++i)
    text += "  job-" + std::to_string(i) + ":\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo " +
            std::to_string(i) + "\n";
  text += "  gather:\n    needs: [job-0, job-1]\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n";
  return text;
}

class AnnounceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::open_sqlite_store(dir_.path() / "state.db");
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
    sqlite_ = dynamic_cast<store::SqliteRunStore*>(store_.get());
    ASSERT_NE(sqlite_, nullptr);
    store::NewRun run;
    run.repository = "acme/big";
    run.forge = "github";
    run.event = "push";
    run.ref = "refs/heads/main";
    run.sha = std::string(40, 'a');
    run.trigger = "webhook";
    ASSERT_TRUE(store_->enqueue_run(run, 1000));
    auto claimed = store_->claim_next_run("agent-1", 60'000, 2000);
    ASSERT_TRUE(claimed && *claimed);
    claim_ = (*claimed)->claim();
  }

  PreparedRun prepare(const std::string& workflow) {
    const fs::path workspace = dir_.path() / "workspace";
    fs::create_directories(workspace / ".github/workflows");
    std::ofstream(workspace / ".github/workflows/big.yml") << workflow;
    RunSource source;
    source.ref = "refs/heads/main";
    source.repository = "acme/big";
    source.workspace = workspace;
    auto prepared = prepare_run(source, RunTrigger{});
    if (!prepared) {
      std::string all;
      for (const auto& message : prepared.error().messages) all += message + "\n";
      ADD_FAILURE() << all;
      return {};
    }
    return std::move(*prepared);
  }

  RunReporter reporter() {
    StatusScope scope{forge::ForgeKind::github, "acme/big", std::string(40, 'a'), "refs/heads/main",
                      "http://127.0.0.1/runs/1"};
    return RunReporter(*store_, claim_, scope, [] { return std::int64_t{5000}; }, [this] { ++woken_; });
  }

  TempDir dir_;
  std::unique_ptr<store::RunStore> store_;
  store::SqliteRunStore* sqlite_ = nullptr;
  store::Claim claim_;
  int woken_ = 0;
};

TEST_F(AnnounceTest, AThousandJobWorkflowIsAnnouncedWholeInOneTransaction) {
  constexpr int kJobs = 1000;
  PreparedRun run = prepare(big_workflow(kJobs));
  ASSERT_EQ(run.workflows.size(), 1u);
  ASSERT_EQ(run.workflows[0].plan.jobs().size(), static_cast<std::size_t>(kJobs + 1));
  RunReporter announcer = reporter();
  const auto before = sqlite_->write_transactions();
  announcer.announce(run, dir_.path() / "logs");
  EXPECT_EQ(sqlite_->write_transactions() - before, 1u) << "one commit for every job and status";
  EXPECT_EQ(woken_, 1) << "the status sender is told once";

  auto jobs = store_->jobs_of(claim_.run_id);
  ASSERT_TRUE(jobs) << jobs.error().message;
  ASSERT_EQ(jobs->size(), static_cast<std::size_t>(kJobs + 1));
  std::set<std::string> keys;
  for (const auto& job : *jobs) {
    EXPECT_EQ(job.state, store::JobState::queued) << job.key;
    keys.insert(job.key);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kJobs + 1));
  EXPECT_TRUE(keys.contains(".github/workflows/big.yml/job-999"));
  const auto gather = std::find_if(jobs->begin(), jobs->end(), [](const auto& job) { return job.name == "gather"; });
  ASSERT_NE(gather, jobs->end());
  EXPECT_EQ(gather->needs,
            (std::vector<std::string>{".github/workflows/big.yml/job-0", ".github/workflows/big.yml/job-1"}));

  // One pending status per job and one for the workflow, all due for the forge.
  EXPECT_EQ(store_->pending_status_count().value_or(-1), kJobs + 2);
  auto due = store_->due_statuses(10'000, 5000);
  ASSERT_TRUE(due);
  std::set<std::string> contexts;
  for (const auto& status : *due) {
    EXPECT_EQ(status.state, "pending") << status.context;
    EXPECT_EQ(status.description, "Queued") << status.context;
    contexts.insert(status.context);
  }
  EXPECT_TRUE(contexts.contains("sandci/big"));
  EXPECT_TRUE(contexts.contains("sandci/big/job-0"));
  EXPECT_TRUE(contexts.contains("sandci/big/gather"));
}

TEST_F(AnnounceTest, AStaleClaimRecordsNoJobsButStillQueuesTheStatuses) {
  PreparedRun run = prepare(big_workflow(3));
  ASSERT_EQ(run.workflows.size(), 1u);
  // Another agent took the run back: this claim's writes must change no job.
  ASSERT_TRUE(store_->finish_run(claim_, store::RunState::cancelled, "taken back", 3000));
  RunReporter announcer = reporter();
  announcer.announce(run, dir_.path() / "logs");
  auto jobs = store_->jobs_of(claim_.run_id);
  ASSERT_TRUE(jobs);
  EXPECT_TRUE(jobs->empty());
  EXPECT_EQ(store_->pending_status_count().value_or(-1), 3 + 1 + 1);
}

TEST(PutJobsAndStatusesTest, AJobOfAnotherRunIsRefusedAndNothingIsWritten) {
  TempDir dir;
  auto opened = store::open_sqlite_store(dir.path() / "state.db");
  ASSERT_TRUE(opened);
  auto& store = **opened;
  store::NewRun run;
  run.repository = "acme/app";
  run.forge = "github";
  ASSERT_TRUE(store.enqueue_run(run, 1));
  auto claimed = store.claim_next_run("a", 60'000, 2);
  ASSERT_TRUE(claimed && *claimed);
  store::JobRecord mine, other;
  mine.run_id = (*claimed)->id;
  mine.key = "ci.yml/build";
  other.run_id = mine.run_id + 1;
  other.key = "ci.yml/test";
  store::StatusRecord status;
  status.repository = "acme/app";
  status.forge = "github";
  status.sha = std::string(40, 'b');
  status.context = "sandci/ci";
  status.state = "pending";
  auto put = store.put_jobs_and_statuses((*claimed)->claim(), {mine, other}, {status}, 3);
  ASSERT_FALSE(put);
  EXPECT_NE(put.error().message.find("belongs to run"), std::string::npos) << put.error().message;
  EXPECT_TRUE(store.jobs_of(mine.run_id)->empty());
  EXPECT_EQ(store.pending_status_count().value_or(-1), 0);
}

}  // namespace
}  // namespace sandci::agent::server
