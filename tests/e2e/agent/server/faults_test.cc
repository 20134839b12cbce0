// Faults in a realistic flow: a real repository pushed with `git push` to a git
// daemon on 127.0.0.1, its signed webhook, `sandci serve` as a real process and
// the test forge. Each test ends with the statuses the forge shows being final
// and right, no push lost, and (once the agent stopped) nothing left behind.
//
// What other tests already prove at a lower level, and so is not repeated here:
// - SIGKILL then restart on a one-job workflow, both `interrupted_runs` modes:
//   integration LifecycleTest.SigkillMidRunThenRestartRequeues / ...MarksError;
//   here the kill lands mid-diamond, and the restart must also reap the killed
//   agent's sandboxes and cgroups.
// - 500 then 429 (Retry-After), and a hung forge, each alone: integration
//   ServeTest.StatusesSurviveAForgeOutage, ForgeThatHangsIsTimedOutAndRetried,
//   LifecycleTest.OutboxSurvivesARestart; here all three in a row on one push.
// - A git server that never answers, at the git library's level: integration
//   git RobustnessTest; here the agent's run over a daemon that is down.
// - The memory limit at the sandbox's level: integration sandbox
//   HostileJobTest.MemoryHogIsKilledAtTheLimitAndReportedAsOutOfMemory; the log
//   cap through the agent: ServeTest.FloodedLogStopsAtItsLimit. Here both jobs
//   sit in one workflow beside a good one, through the agent and to statuses.
// - /readyz on a disk below its limit: LifecycleTest.ReadyzChecksTheStoreRunsc
//   AndTheStateDisk. The disk-full refusal of deliveries is proven only here.
#include <atomic>

#include "e2e/agent/server/e2e_server_support.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class FaultsTest : public E2eServerTest {};

// The diamond with a middle job that takes a few seconds: time for a kill.
const char* kSlowDiamond = R"(name: ci
on: push
jobs:
  setup:
    runs-on: linux
    steps:
      - run: echo setup-done
  slow:
    needs: setup
    runs-on: linux
    steps:
      - run: echo slow-start; sleep 5; echo slow-done
  quick:
    needs: setup
    runs-on: linux
    steps:
      - run: echo quick-done
  report:
    needs: [slow, quick]
    runs-on: linux
    steps:
      - run: echo report-done
)";

const std::vector<std::string> kSlowDiamondContexts = {"sandci/ci", "sandci/ci/setup", "sandci/ci/slow",
                                                       "sandci/ci/quick", "sandci/ci/report"};

// SIGKILL while the diamond runs, as systemd's unit (KillMode=mixed) sees it:
// the agent and the processes left in its cgroup die, the sandboxes (in cgroups
// of their own) stay. The restarted agent re-queues the run, reaps what the
// killed one left, and the push ends in success.
TEST_F(FaultsTest, AgentKilledMidRunIsRestartedAndThePushStillEndsInSuccess) {
  TestForge forge;
  add_repo("alice/app", ForgeKind::github, {{".github/workflows/ci.yml", kSlowDiamond}});
  write_e2e_config(forge, 2, "interrupted_runs: requeue\n");
  start_e2e_agent();
  const Push push{"alice/app", "main", first_sha_["alice/app"], std::string(40, '0')};
  auto accepted = send_push(push);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  // Killed once the forge shows the slow job pending: its sandbox is up.
  ASSERT_TRUE(eventually([&] { return !states_of(statuses_of(forge, push), "sandci/ci/slow").empty(); }, 180s))
      << slurp(log_file());
  ASSERT_TRUE(eventually([&] {
    std::error_code ec;
    return fs::exists(state() / "sandbox" / "bundles", ec) && !fs::is_empty(state() / "sandbox" / "bundles", ec);
  }, 60s));
  kill_agent_as_systemd_would();
  EXPECT_FALSE(fs::is_empty(state() / "sandbox" / "bundles")) << "the kill left the sandbox for the restart to reap";

  start_e2e_agent();
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 300s)) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  EXPECT_EQ(run_json(run)["attempt"], 2);
  ASSERT_TRUE(eventually([&] { return all_final(forge, push, kSlowDiamondContexts); }, 120s));
  for (const auto& [context, state] : final_states(forge, push)) EXPECT_EQ(state, "success") << context;
  auto log = get("/runs/" + std::to_string(run) + "/jobs/%2Egithub%2Fworkflows%2Fci.yml%2Fslow/log");
  EXPECT_NE(log.body.find("slow-done"), std::string::npos) << log.body;

  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();  // the first agent's sandbox and cgroup included
}

// The forge answers 500 for a while, then 429 with Retry-After, then hangs on a
// request; every status still arrives, once, and ends final.
TEST_F(FaultsTest, ForgeFailsThenRateLimitsThenHangsAndEveryStatusArrives) {
  TestForge forge;
  forge.script([](const TestForge::Request&, int number) -> std::optional<http::HttpResponse> {
    if (number <= 4) return http::HttpResponse::json(500, R"({"message":"internal error"})");
    if (number <= 6) {
      auto r = http::HttpResponse::json(429, R"({"message":"API rate limit exceeded"})");
      r.headers.set("Retry-After", "2");
      return r;
    }
    if (number == 7) return http::HttpResponse{0, {}, ""};  // never answered
    return std::nullopt;
  });
  add_repo("alice/app", ForgeKind::github, {{".github/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge);
  start_e2e_agent();
  const Push push{"alice/app", "main", first_sha_["alice/app"], std::string(40, '0')};
  auto accepted = send_push(push);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 300s));
  EXPECT_EQ(run_state(run), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, push, matrix_diamond_contexts()); }, 300s))
      << slurp(log_file());
  for (const auto& [context, state] : final_states(forge, push)) EXPECT_EQ(state, "success") << context;
  std::set<std::pair<std::string, std::string>> delivered;
  for (const auto& s : statuses_of(forge, push))
    EXPECT_TRUE(delivered.insert({s.context, s.state}).second) << s.context << " " << s.state << " delivered twice";
  EXPECT_GE(forge.requests().size(), forge.delivered().size() + 7) << "the 500s, 429s and the hang were all seen";
  const std::string log = slurp(log_file());
  EXPECT_NE(log.find("event=status_retry"), std::string::npos);
  EXPECT_NE(log.find("timed out"), std::string::npos) << "the hung request was not timed out";
  EXPECT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));
  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

// The git server is down when the run fetches: the push's commit gets an error
// status that says so (nothing stays pending); with the server back, a re-run of
// that run and the next push both succeed.
TEST_F(FaultsTest, GitServerDownDuringTheFetchThenBack) {
  TestForge forge;
  add_repo("alice/app", ForgeKind::gitea, {{".gitea/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge);
  start_e2e_agent();
  const Push push = push_commit("alice/app", {{"notes.txt", "pushed just before the outage\n"}}, "notes");
  git_server_->stop();
  auto accepted = send_push(push);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto failed = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(failed); }, 180s)) << slurp(log_file());
  EXPECT_EQ(run_state(failed), "error");
  EXPECT_NE(run_json(failed)["message"].get<std::string>().find("unreachable"), std::string::npos)
      << run_json(failed).dump();
  ASSERT_TRUE(eventually([&] { return all_final(forge, push, {"sandci"}); }, 60s));
  const auto failed_statuses = statuses_of(forge, push);
  ASSERT_EQ(failed_statuses.size(), 1u) << "only the run's own context: no job was planned";
  EXPECT_EQ(failed_statuses[0].state, "error");
  EXPECT_EQ(failed_statuses[0].target_url, agent_url() + "/runs/" + std::to_string(failed));
  EXPECT_NE(failed_statuses[0].description.find("unreachable"), std::string::npos) << failed_statuses[0].description;

  git_server_->start();
  // The operator re-runs it: the same commit, now fetched.
  http::ClientRequest rerun;
  rerun.method = "POST";
  rerun.url = agent_url() + "/api/runs/" + std::to_string(failed) + "/rerun";
  rerun.headers.set("Authorization", std::string("Bearer ") + kAdminToken);
  auto rerun_answer = client_.send(rerun);
  ASSERT_TRUE(rerun_answer && rerun_answer->status == 202) << (rerun_answer ? rerun_answer->body : rerun_answer.error());
  const std::int64_t again = json::parse(rerun_answer->body)["run"];
  ASSERT_TRUE(eventually([&] { return run_finished(again); }, 300s)) << slurp(log_file());
  EXPECT_EQ(run_state(again), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, push, matrix_diamond_contexts()); }, 120s));
  for (const auto& context : matrix_diamond_contexts())
    EXPECT_EQ(final_states(forge, push)[context], "success") << context;

  // The next push goes through as usual.
  const Push next = push_commit("alice/app", {{"notes.txt", "after the outage\n"}}, "more notes");
  auto next_accepted = send_push(next);
  ASSERT_EQ(next_accepted.status, 202);
  const auto next_run = run_id_of(next_accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(next_run); }, 300s));
  EXPECT_EQ(run_state(next_run), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, next, matrix_diamond_contexts()); }, 120s));
  expect_push_statuses(forge, next, matrix_diamond_contexts(), "success",
                       agent_url() + "/runs/" + std::to_string(next_run));
  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

// One push whose workflow has a job over its memory limit and one flooding its
// log, beside a good one: the hog fails with "out of memory", the flood is cut
// at the log limit and passes, the good job passes, the workflow fails; the
// fix pushed next passes, and the agent served both.
TEST_F(FaultsTest, JobOverItsMemoryLimitAndJobFloodingItsLog) {
  TestForge forge;
  const char* hostile = R"(name: ci
on: push
jobs:
  hog:
    runs-on: linux
    steps:
      # tail keeps the whole newline-free "line" in memory, past the job's limit.
      - run: head -c 1G /dev/zero | tail -n 1 | wc -c
  flood:
    runs-on: linux
    steps:
      - run: yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 4000000; echo
      - run: echo after-the-flood
  fine:
    runs-on: linux
    steps:
      - run: echo fine-here
)";
  add_repo("alice/app", ForgeKind::github, {{".github/workflows/ci.yml", hostile}});
  write_e2e_config(forge, 2, "limits: {job_memory_mib: 256, job_log_mib: 1}\n");
  start_e2e_agent();
  const Push push{"alice/app", "main", first_sha_["alice/app"], std::string(40, '0')};
  auto accepted = send_push(push);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  const std::vector<std::string> contexts = {"sandci/ci", "sandci/ci/hog", "sandci/ci/flood", "sandci/ci/fine"};
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 300s)) << slurp(log_file());
  EXPECT_EQ(run_state(run), "failure");
  ASSERT_TRUE(eventually([&] { return all_final(forge, push, contexts); }, 120s));
  auto last = final_states(forge, push);
  EXPECT_EQ(last["sandci/ci/hog"], "failure");
  EXPECT_EQ(last["sandci/ci/flood"], "success");
  EXPECT_EQ(last["sandci/ci/fine"], "success");
  EXPECT_EQ(last["sandci/ci"], "failure");
  bool said_memory = false;
  for (const auto& s : statuses_of(forge, push))
    said_memory |= s.context == "sandci/ci/hog" && s.description.find("memory") != std::string::npos;
  EXPECT_TRUE(said_memory) << "the hog's status says it ran out of memory";
  const auto jobs = run_json(run)["jobs"];
  for (const auto& job : jobs)
    if (job["name"] == "hog") {
      EXPECT_NE(job["message"].get<std::string>().find("out of memory"), std::string::npos) << job.dump();
    }

  auto flood_log = get("/runs/" + std::to_string(run) + "/jobs/%2Egithub%2Fworkflows%2Fci.yml%2Fflood/log?raw=1");
  ASSERT_EQ(flood_log.status, 200);
  EXPECT_LE(flood_log.body.size(), (1u << 20) + 4096);
  EXPECT_NE(flood_log.body.find("reached its limit of 1 MiB"), std::string::npos);
  EXPECT_EQ(flood_log.body.find("after-the-flood"), std::string::npos) << "lines past the limit are left out";
  EXPECT_EQ(get("/runs/" + std::to_string(run) + "/jobs/%2Egithub%2Fworkflows%2Fci.yml%2Fflood/log").status, 200)
      << "the log's page answers too";
  EXPECT_EQ(get("/healthz").status, 200);

  const Push fix = push_commit("alice/app", {{".github/workflows/ci.yml", R"(name: ci
on: push
jobs:
  fine:
    runs-on: linux
    steps:
      - run: echo fine-here
)"}}, "drop the hog and the flood");
  auto fixed = send_push(fix);
  ASSERT_EQ(fixed.status, 202) << fixed.body;
  const auto fix_run = run_id_of(fixed);
  ASSERT_TRUE(eventually([&] { return run_finished(fix_run); }, 300s));
  EXPECT_EQ(run_state(fix_run), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, fix, {"sandci/ci", "sandci/ci/fine"}); }, 120s));
  expect_push_statuses(forge, fix, {"sandci/ci", "sandci/ci/fine"}, "success",
                       agent_url() + "/runs/" + std::to_string(fix_run));
  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

// The state folder is a small tmpfs. Filled up, the agent refuses deliveries
// with 503 (and says why in its log and on /readyz) without recording them;
// once space returns, the forge's redelivery of the same delivery is taken and
// the push ends in success.
TEST_F(FaultsTest, FullStateDiskRefusesDeliveriesThenRecovers) {
  mount_state_tmpfs(64);
  TestForge forge;
  add_repo("alice/app", ForgeKind::github, {{".github/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge, 2, "limits: {state_min_free_mib: 16}\n");
  start_e2e_agent();
  const Push first{"alice/app", "main", first_sha_["alice/app"], std::string(40, '0')};
  auto accepted = send_push(first);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); }, 300s)) << slurp(log_file());
  EXPECT_EQ(run_state(run_id_of(accepted)), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, first, matrix_diamond_contexts()); }, 120s));

  // Fill the disk to the last block.
  const fs::path filler = state() / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string block(1 << 20, 'x');
    while (out.write(block.data(), block.size())) {
    }
  }
  const Push second = push_commit("alice/app", {{"notes.txt", "pushed while the agent's disk is full\n"}}, "notes");
  auto refused = send_push(second, "full-disk-delivery");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("disk is full"), std::string::npos) << refused.body;
  EXPECT_TRUE(refused.headers.get("Retry-After").has_value());
  EXPECT_EQ(get("/readyz").status, 503);
  EXPECT_EQ(get("/healthz").status, 200) << "the agent stays up";
  const std::string log = slurp(log_file());
  EXPECT_NE(log.find("event=state_disk_full"), std::string::npos) << log;
  EXPECT_NE(log.find("event=delivery_refused reason=state_disk_full"), std::string::npos) << log;
  auto runs = json::parse(get("/api/runs?limit=50").body, nullptr, false);
  ASSERT_TRUE(runs.is_object());
  EXPECT_EQ(runs["runs"].size(), 1u) << "the refused delivery queued nothing";

  fs::remove(filler);
  auto redelivered = send_push(second, "full-disk-delivery");
  ASSERT_EQ(redelivered.status, 202) << "a refused delivery was not recorded, so its redelivery is new: "
                                     << redelivered.body;
  EXPECT_NE(slurp(log_file()).find("event=state_disk_recovered"), std::string::npos);
  const auto run = run_id_of(redelivered);
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 300s)) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  ASSERT_TRUE(eventually([&] { return all_final(forge, second, matrix_diamond_contexts()); }, 120s));
  expect_push_statuses(forge, second, matrix_diamond_contexts(), "success",
                       agent_url() + "/runs/" + std::to_string(run));
  EXPECT_TRUE(eventually([&] { return get("/readyz").status == 200; }, 60s));
  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
