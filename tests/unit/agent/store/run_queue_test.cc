// Deliveries, the run queue, claims and jobs on a real SQLite file.
#include <gtest/gtest.h>

#include "agent/store/run_store.h"
#include "store_test_support.h"

namespace sandci::agent::store {
namespace {

using namespace sandci::agent::store::testing;

constexpr std::int64_t kLease = 30'000;

JobRecord job(std::int64_t run_id, std::string key, JobState state, std::int64_t started_ms = 0,
              std::int64_t finished_ms = 0) {
  JobRecord job;
  job.run_id = run_id;
  job.workflow = "ci.yml";
  job.name = key;
  job.key = std::move(key);
  job.state = state;
  job.started_ms = started_ms;
  job.finished_ms = finished_ms;
  return job;
}

class RunQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = tmp_.path() / "state.db";
    store_ = open_store(file_);
    ASSERT_NE(store_, nullptr);
  }

  std::int64_t enqueue(NewRun run = make_run(), std::int64_t now = 1000) {
    auto id = store_->enqueue_run(run, now);
    EXPECT_TRUE(id.has_value()) << id.error().message;
    return id.value_or(0);
  }

  RunRecord claim(const std::string& owner, std::int64_t now) {
    auto run = store_->claim_next_run(owner, kLease, now);
    EXPECT_TRUE(run.has_value()) << run.error().message;
    EXPECT_TRUE(run->has_value()) << "nothing to claim";
    return run->value_or(RunRecord{});
  }

  RunRecord get(std::int64_t id) {
    auto run = store_->get_run(id);
    EXPECT_TRUE(run.has_value()) << run.error().message;
    EXPECT_TRUE(run->has_value()) << "no run " << id;
    return run->value_or(RunRecord{});
  }

  TempDir tmp_;
  fs::path file_;
  std::unique_ptr<RunStore> store_;
};

TEST(RunStateNames, RoundTripAndRejectUnknown) {
  for (auto state : {RunState::queued, RunState::running, RunState::success, RunState::failure,
                     RunState::error, RunState::cancelled}) {
    EXPECT_EQ(parse_run_state(to_string(state)), state);
  }
  for (auto state : {JobState::queued, JobState::running, JobState::success, JobState::failure,
                     JobState::skipped, JobState::cancelled, JobState::error}) {
    EXPECT_EQ(parse_job_state(to_string(state)), state);
  }
  EXPECT_EQ(parse_run_state("done"), std::nullopt);
  EXPECT_EQ(parse_job_state(""), std::nullopt);
  EXPECT_FALSE(is_final(RunState::running));
  EXPECT_TRUE(is_final(RunState::cancelled));
}

TEST_F(RunQueueTest, SecondDeliveryWithTheSameIdIsADuplicateAndQueuesNothing) {
  auto first = store_->accept_delivery(make_delivery("d-1"), make_run());
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first->duplicate);
  ASSERT_TRUE(first->run_id.has_value());

  auto again = store_->accept_delivery(make_delivery("d-1", 2000), make_run());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  EXPECT_FALSE(again->run_id.has_value());
  EXPECT_EQ(store_->count_runs(RunState::queued).value(), 1);

  // The same id from another forge is another delivery.
  auto other = make_delivery("d-1");
  other.forge = "gitea";
  auto third = store_->accept_delivery(other, make_run());
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->duplicate);
  EXPECT_EQ(store_->count_runs(RunState::queued).value(), 2);
}

TEST_F(RunQueueTest, DeliveryWithoutRunIsRecordedForDedupe) {
  auto ping = store_->accept_delivery(make_delivery("ping-1"), std::nullopt);
  ASSERT_TRUE(ping);
  EXPECT_FALSE(ping->duplicate);
  EXPECT_FALSE(ping->run_id.has_value());
  EXPECT_TRUE(store_->accept_delivery(make_delivery("ping-1"), std::nullopt)->duplicate);
  EXPECT_EQ(store_->count_runs(RunState::queued).value(), 0);
}

TEST_F(RunQueueTest, DeliveryAndRunAreOnDiskTogetherAfterReopen) {
  auto run = make_run();
  run.delivery_id = "d-42";
  run.title = "Add a feature";
  run.from_fork = true;
  auto accepted = store_->accept_delivery(make_delivery("d-42", 5555), run);
  ASSERT_TRUE(accepted) << accepted.error().message;
  store_.reset();

  EXPECT_EQ(query_file(file_, "SELECT run_id FROM deliveries WHERE delivery_id = 'd-42'"),
            *accepted->run_id);
  store_ = open_store(file_);
  ASSERT_NE(store_, nullptr);
  RunRecord stored = get(*accepted->run_id);
  EXPECT_EQ(stored.state, RunState::queued);
  EXPECT_EQ(stored.created_ms, 5555);
  EXPECT_EQ(stored.delivery_id, "d-42");
  EXPECT_EQ(stored.title, "Add a feature");
  EXPECT_TRUE(stored.from_fork);
  EXPECT_EQ(stored.payload_json, run.payload_json);
  EXPECT_TRUE(store_->accept_delivery(make_delivery("d-42"), run)->duplicate);
}

TEST_F(RunQueueTest, ClaimsTheOldestQueuedRunAndSetsOwnerLeaseAndAttempt) {
  std::int64_t first = enqueue(make_run("acme/one"));
  std::int64_t second = enqueue(make_run("acme/two"));

  RunRecord a = claim("agent-a", 10'000);
  EXPECT_EQ(a.id, first);
  EXPECT_EQ(a.state, RunState::running);
  EXPECT_EQ(a.owner, "agent-a");
  EXPECT_EQ(a.attempt, 1);
  EXPECT_EQ(a.started_ms, 10'000);
  EXPECT_EQ(a.lease_until_ms, 10'000 + kLease);
  EXPECT_EQ(a.repository, "acme/one");

  RunRecord b = claim("agent-b", 11'000);
  EXPECT_EQ(b.id, second);
  auto none = store_->claim_next_run("agent-a", kLease, 12'000);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(store_->count_runs(RunState::running).value(), 2);
}

TEST_F(RunQueueTest, RenewLeaseOnlyForTheCurrentClaim) {
  enqueue();
  RunRecord run = claim("agent-a", 10'000);
  EXPECT_TRUE(store_->renew_lease(run.claim(), kLease, 20'000).value());
  EXPECT_EQ(get(run.id).lease_until_ms, 20'000 + kLease);

  Claim wrong_owner = run.claim();
  wrong_owner.owner = "agent-b";
  EXPECT_FALSE(store_->renew_lease(wrong_owner, kLease, 25'000).value());
  Claim wrong_attempt = run.claim();
  wrong_attempt.attempt = 2;
  EXPECT_FALSE(store_->renew_lease(wrong_attempt, kLease, 25'000).value());
  EXPECT_EQ(get(run.id).lease_until_ms, 20'000 + kLease);
}

TEST_F(RunQueueTest, FinishRunIsIdempotentAndRejectsNonFinalStates) {
  enqueue();
  RunRecord run = claim("agent-a", 10'000);
  EXPECT_FALSE(store_->finish_run(run.claim(), RunState::running, "", 11'000).has_value());

  EXPECT_TRUE(store_->finish_run(run.claim(), RunState::success, "all green", 12'000).value());
  EXPECT_TRUE(store_->finish_run(run.claim(), RunState::success, "all green", 12'000).value());
  EXPECT_FALSE(store_->finish_run(run.claim(), RunState::failure, "late", 13'000).value());
  RunRecord done = get(run.id);
  EXPECT_EQ(done.state, RunState::success);
  EXPECT_EQ(done.message, "all green");
  EXPECT_EQ(done.finished_ms, 12'000);
  EXPECT_FALSE(store_->renew_lease(run.claim(), kLease, 14'000).value());
}

TEST_F(RunQueueTest, PutJobUpsertsByKeyInFirstStoredOrder) {
  enqueue();
  RunRecord run = claim("agent-a", 10'000);
  JobRecord build{run.id,
                  "ci.yml/build (linux)",
                  "ci.yml",
                  "build (linux)",
                  JobState::running,
                  10'100,
                  0,
                  "/logs/1/build.log",
                  "debian:bookworm",
                  ""};
  JobRecord test = job(run.id, "ci.yml/test", JobState::queued);
  ASSERT_TRUE(store_->put_job(run.claim(), build).value());
  ASSERT_TRUE(store_->put_job(run.claim(), test).value());
  build.state = JobState::success;
  build.finished_ms = 10'900;
  ASSERT_TRUE(store_->put_job(run.claim(), build).value());

  auto jobs = store_->jobs_of(run.id);
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].key, "ci.yml/build (linux)");
  EXPECT_EQ((*jobs)[0].state, JobState::success);
  EXPECT_EQ((*jobs)[0].finished_ms, 10'900);
  EXPECT_EQ((*jobs)[0].image, "debian:bookworm");
  EXPECT_EQ((*jobs)[1].key, "ci.yml/test");

  JobRecord foreign = test;
  foreign.run_id = run.id + 1;
  EXPECT_FALSE(store_->put_job(run.claim(), foreign).has_value());
}

TEST_F(RunQueueTest, StaleClaimWritesChangeNothingAfterRecoverRequeuesAndAnotherClaims) {
  std::int64_t id = enqueue();
  RunRecord old = claim("agent-a", 10'000);
  ASSERT_TRUE(
      store_->put_job(old.claim(), job(id, "ci.yml/build", JobState::running, 10'100)).value());

  // agent-a's lease ran out; agent-b starts up and takes the run back.
  auto recovered = store_->recover("agent-b", /*requeue=*/true, 10'000 + kLease + 1);
  ASSERT_TRUE(recovered) << recovered.error().message;
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].state, RunState::queued);
  RunRecord fresh = claim("agent-b", 50'000);
  EXPECT_EQ(fresh.id, id);
  EXPECT_EQ(fresh.attempt, 2);

  // agent-a was not dead after all: its late writes are ignored.
  EXPECT_FALSE(store_->renew_lease(old.claim(), kLease, 50'100).value());
  EXPECT_FALSE(
      store_->put_job(old.claim(), job(id, "ci.yml/build", JobState::failure, 10'100, 50'200))
          .value());
  EXPECT_FALSE(store_->finish_run(old.claim(), RunState::failure, "late", 50'300).value());

  RunRecord now = get(id);
  EXPECT_EQ(now.state, RunState::running);
  EXPECT_EQ(now.owner, "agent-b");
  EXPECT_EQ(now.attempt, 2);
  EXPECT_EQ(now.lease_until_ms, 50'000 + kLease);
  auto jobs = store_->jobs_of(id).value();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state, JobState::cancelled);  // as recover() left it, not agent-a's failure

  EXPECT_TRUE(store_->finish_run(fresh.claim(), RunState::success, "", 60'000).value());
  EXPECT_EQ(get(id).state, RunState::success);
}

TEST_F(RunQueueTest, RecoverRequeuesOwnAndExpiredRunsButNotOthersLiveOnes) {
  std::int64_t mine = enqueue();
  std::int64_t theirs_live = enqueue();
  std::int64_t theirs_expired = enqueue();
  std::int64_t queued = enqueue();
  claim("agent-a", 10'000);                                               // lease until 40'000
  claim("agent-b", 30'000);                                               // lease until 60'000
  ASSERT_TRUE(store_->claim_next_run("agent-c", 1'000, 10'000).value());  // until 11'000

  auto recovered = store_->recover("agent-a", /*requeue=*/true, 45'000);
  ASSERT_TRUE(recovered) << recovered.error().message;
  ASSERT_EQ(recovered->size(), 2u);
  EXPECT_EQ((*recovered)[0].id, mine);
  EXPECT_EQ((*recovered)[1].id, theirs_expired);
  for (const RunRecord& run : *recovered) {
    EXPECT_EQ(run.state, RunState::queued);
    EXPECT_EQ(run.owner, "");
    EXPECT_EQ(run.message, "re-queued after the agent stopped");
    EXPECT_EQ(run.attempt, 1);
  }
  EXPECT_EQ(get(theirs_live).state, RunState::running);
  EXPECT_EQ(get(queued).state, RunState::queued);
  // The re-queued runs are older, so they are claimed first.
  EXPECT_EQ(claim("agent-a", 46'000).id, mine);
}

TEST_F(RunQueueTest, RecoverWithoutRequeueMarksRunsAndUnfinishedJobsError) {
  std::int64_t id = enqueue();
  RunRecord run = claim("agent-a", 10'000);
  ASSERT_TRUE(
      store_->put_job(run.claim(), job(id, "a", JobState::success, 10'100, 10'200)).value());
  ASSERT_TRUE(store_->put_job(run.claim(), job(id, "b", JobState::running, 10'300)).value());

  auto recovered = store_->recover("agent-a", /*requeue=*/false, 12'000);
  ASSERT_TRUE(recovered);
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].state, RunState::error);
  EXPECT_EQ((*recovered)[0].message, "interrupted: the agent stopped");
  EXPECT_EQ((*recovered)[0].finished_ms, 12'000);
  auto jobs = store_->jobs_of(id).value();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].state, JobState::success);
  EXPECT_EQ(jobs[1].state, JobState::error);
  EXPECT_EQ(jobs[1].finished_ms, 12'000);
  EXPECT_FALSE(store_->finish_run(run.claim(), RunState::success, "", 13'000).value());
  EXPECT_TRUE(store_->recover("agent-a", false, 14'000)->empty());
}

TEST_F(RunQueueTest, RecoverCancelsARunWhoseCancelWasRequested) {
  std::int64_t id = enqueue();
  claim("agent-a", 10'000);
  ASSERT_TRUE(store_->request_cancel(id, 10'500).value());
  auto recovered = store_->recover("agent-a", /*requeue=*/true, 11'000);
  ASSERT_TRUE(recovered);
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].state, RunState::cancelled);
  EXPECT_EQ(store_->count_runs(RunState::queued).value(), 0);
}

TEST_F(RunQueueTest, SupersedeCancelsOlderQueuedAndFlagsOlderRunning) {
  std::int64_t running = enqueue(make_run("acme/app", "refs/heads/main", "acme/app:main"));
  claim("agent-a", 10'000);
  std::int64_t queued = enqueue(make_run("acme/app", "refs/heads/main", "acme/app:main"));
  std::int64_t other_key = enqueue(make_run("acme/app", "refs/heads/dev", "acme/app:dev"));
  std::int64_t newer = enqueue(make_run("acme/app", "refs/heads/main", "acme/app:main"));

  std::vector<std::int64_t> cancelled_queued;
  auto to_stop = store_->supersede("acme/app:main", newer, 20'000, &cancelled_queued);
  ASSERT_TRUE(to_stop) << to_stop.error().message;
  EXPECT_EQ(*to_stop, std::vector<std::int64_t>{running});
  EXPECT_EQ(cancelled_queued, std::vector<std::int64_t>{queued});

  RunRecord cancelled = get(queued);
  EXPECT_EQ(cancelled.state, RunState::cancelled);
  EXPECT_EQ(cancelled.message, "superseded by run " + std::to_string(newer));
  EXPECT_EQ(cancelled.finished_ms, 20'000);
  EXPECT_TRUE(store_->cancel_requested(running).value());
  EXPECT_EQ(get(running).state, RunState::running);
  EXPECT_EQ(get(other_key).state, RunState::queued);
  EXPECT_EQ(get(newer).state, RunState::queued);
  EXPECT_FALSE(store_->cancel_requested(newer).value());
  EXPECT_TRUE(store_->supersede("", newer, 20'000)->empty());
}

TEST_F(RunQueueTest, CancelQueuedAndRequestCancel) {
  std::int64_t a = enqueue();
  std::int64_t b = enqueue();
  std::int64_t c = enqueue();
  RunRecord running = claim("agent-a", 10'000);
  ASSERT_EQ(running.id, a);

  EXPECT_FALSE(store_->cancel_queued(a, 11'000).value());  // running, not queued
  EXPECT_TRUE(store_->cancel_queued(b, 11'000).value());
  EXPECT_EQ(get(b).state, RunState::cancelled);
  EXPECT_FALSE(store_->cancel_queued(b, 11'000).value());

  EXPECT_TRUE(store_->request_cancel(c, 12'000).value());  // queued: cancelled at once
  EXPECT_EQ(get(c).state, RunState::cancelled);
  EXPECT_FALSE(store_->cancel_requested(a).value());
  EXPECT_TRUE(store_->request_cancel(a, 12'000).value());  // running: flagged
  EXPECT_TRUE(store_->cancel_requested(a).value());
  EXPECT_EQ(get(a).state, RunState::running);
  EXPECT_FALSE(store_->request_cancel(9999, 12'000).value());
  ASSERT_TRUE(store_->finish_run(running.claim(), RunState::cancelled, "", 13'000).value());
  EXPECT_FALSE(store_->request_cancel(a, 14'000).value());
}

TEST_F(RunQueueTest, ListRunsNewestFirstWithFiltersAndPaging) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(enqueue(make_run("acme/app", "refs/heads/main")));
  std::int64_t dev = enqueue(make_run("acme/app", "refs/heads/dev"));
  std::int64_t lib = enqueue(make_run("acme/lib", "refs/heads/main"));
  claim("agent-a", 10'000);  // ids[0] becomes running

  auto all = store_->list_runs({});
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 7u);
  EXPECT_EQ(all->front().id, lib);

  RunFilter main_of_app{.repository = "acme/app", .ref = "refs/heads/main", .limit = 2};
  auto page1 = store_->list_runs(main_of_app).value();
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].id, ids[4]);
  EXPECT_EQ(page1[1].id, ids[3]);
  main_of_app.before_id = page1.back().id;
  auto page2 = store_->list_runs(main_of_app).value();
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_EQ(page2[0].id, ids[2]);

  auto running = store_->list_runs(RunFilter{.state = RunState::running}).value();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].id, ids[0]);
  auto dev_runs = store_->list_runs(RunFilter{.ref = "refs/heads/dev"}).value();
  ASSERT_EQ(dev_runs.size(), 1u);
  EXPECT_EQ(dev_runs[0].id, dev);
  EXPECT_FALSE(store_->get_run(12345).value().has_value());
}

}  // namespace
}  // namespace sandci::agent::store
