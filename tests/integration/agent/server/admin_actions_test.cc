// Admin actions on the real daemon: cancel a running run, re-run a finished one (all
// jobs or the failed ones), refusals without the admin token, and `sandci runs`.
#include <gtest/gtest.h>

#include "agent/server/routes.h"
#include "integration/agent/server/admin_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class AdminActionsTest : public AdminTest {};

// The last state the forge shows for `context` on `sha`.
std::string last_state(const TestForge& forge, const std::string& sha, const std::string& context) {
  std::string state;
  for (const auto& s : seen_statuses(forge.delivered()))
    if (s.sha == sha && s.context == context) state = s.state;
  return state;
}

TEST_F(AdminActionsTest, CancelsARunningRunOnlyWithTheToken) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSlow}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "c-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_state(run) == "running"; }));
  const std::string cancel = "/api/runs/" + std::to_string(run) + "/cancel";

  // Without the token, or with a wrong one: refused, and nothing changes.
  EXPECT_EQ(post(cancel, "").status, 401);
  EXPECT_EQ(post(cancel, "not-the-token").status, 401);
  EXPECT_EQ(post("/api/runs/" + std::to_string(run) + "/rerun", "not-the-token").status, 401);
  std::this_thread::sleep_for(1500ms);  // longer than the worker's cancel check
  EXPECT_EQ(run_state(run), "running");
  EXPECT_EQ(run_count(), 1u);
  EXPECT_TRUE(actions_of(run).empty());

  auto cancelled = post(cancel, kAdminToken, "carol");
  ASSERT_EQ(cancelled.status, 202) << cancelled.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 60s)) << slurp(log_file());
  EXPECT_EQ(run_state(run), "cancelled");
  auto body = run_json(run);
  ASSERT_EQ(body["jobs"].size(), 1u);
  EXPECT_EQ(body["jobs"][0]["state"], "cancelled");
  // GitHub has no cancelled commit state: the job's and the workflow's context end in error.
  ASSERT_TRUE(eventually([&] { return last_state(forge, sha, "sandci/ci.yml/slow") == "error"; }, 60s));
  ASSERT_TRUE(eventually([&] { return last_state(forge, sha, "sandci/ci.yml") == "error"; }, 60s));
  auto actions = actions_of(run);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0]["action"], "cancel");
  EXPECT_EQ(actions[0]["actor"], "carol");
  EXPECT_EQ(post(cancel).status, 409) << "a finished run cannot be cancelled again";
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(AdminActionsTest, RerunsAFinishedRunOnTheSameCommit) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "r-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  const std::int64_t run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  ASSERT_EQ(run_state(run), "success");
  // A newer commit on the branch: the re-run still builds the original's commit.
  repo().commit({{"README", "newer"}}, "newer commit");
  repo().push("HEAD:refs/heads/main");

  auto rerun = post("/api/runs/" + std::to_string(run) + "/rerun");
  ASSERT_EQ(rerun.status, 202) << rerun.body;
  const std::int64_t again = run_id_of(rerun);
  ASSERT_GT(again, run);
  ASSERT_TRUE(eventually([&] { return run_finished(again); })) << slurp(log_file());
  auto body = run_json(again);
  EXPECT_EQ(body["state"], "success");
  EXPECT_EQ(body["sha"], sha);
  EXPECT_EQ(body["ref"], "refs/heads/main");
  EXPECT_EQ(body["attempt"], 2) << "attempts count on from the original";
  EXPECT_EQ(job_keys(again), job_keys(run));
  EXPECT_EQ(job_keys(again).size(), 4u);

  auto list = json::parse(get("/api/runs?state=success").body);
  ASSERT_EQ(list["runs"].size(), 2u);
  EXPECT_EQ(list["runs"][0]["id"], again);
  EXPECT_EQ(list["runs"][0]["trigger"], "rerun");
  auto actions = actions_of(run);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0]["action"], "rerun");
  EXPECT_EQ(actions[0]["actor"], "admin");
  EXPECT_EQ(actions[0]["detail"], "new run " + std::to_string(again));
  // Every status the forge got is for the original commit.
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));
  for (const auto& s : seen_statuses(forge.delivered())) EXPECT_EQ(s.sha, sha);
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(AdminActionsTest, RerunOfFailedJobsRunsOnlyThem) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kFlaky}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "f-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  const std::int64_t run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  ASSERT_EQ(run_state(run), "failure");

  auto rerun = post("/api/runs/" + std::to_string(run) + "/rerun?failed_only=1", kAdminToken, "dave");
  ASSERT_EQ(rerun.status, 202) << rerun.body;
  const std::int64_t again = run_id_of(rerun);
  EXPECT_EQ(json::parse(rerun.body)["jobs"], json::array({".github/workflows/ci.yml/flaky"}));
  ASSERT_TRUE(eventually([&] { return run_finished(again); })) << slurp(log_file());
  EXPECT_EQ(run_state(again), "success") << slurp(log_file());
  EXPECT_EQ(job_keys(again), std::vector<std::string>{".github/workflows/ci.yml/flaky"}) << "good did not run again";
  auto log = get("/runs/" + std::to_string(again) + "/jobs/" + server::percent_encode(".github/workflows/ci.yml/flaky") + "/log");
  EXPECT_NE(log.body.find("attempt 2"), std::string::npos) << log.body;
  EXPECT_EQ(actions_of(run)[0]["detail"], "new run " + std::to_string(again) + " for 1 failed jobs");
  // Nothing failed in the re-run: a failed-only re-run of it is refused.
  EXPECT_EQ(post("/api/runs/" + std::to_string(again) + "/rerun?failed_only=1").status, 409);
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(AdminActionsTest, RunsCommandEndToEnd) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kFlaky}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "l-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  const std::int64_t run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());

  auto list = runs_cli({"list"});
  ASSERT_EQ(list.status, 0) << list.output;
  EXPECT_NE(list.output.find("#1  failure  alice/hello  refs/heads/main  " + sha.substr(0, 12) + "  webhook"),
            std::string::npos)
      << list.output;

  auto rerun = runs_cli({"rerun", "1", "--failed-only", "--token-file", admin_token_file(), "--actor", "erin"});
  ASSERT_EQ(rerun.status, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("queued run 2 (re-run of 1, 1 failed jobs)"), std::string::npos) << rerun.output;
  ASSERT_TRUE(eventually([&] { return run_finished(2); })) << slurp(log_file());
  EXPECT_EQ(run_state(2), "success");

  auto show = runs_cli({"show", "1"});
  ASSERT_EQ(show.status, 0) << show.output;
  EXPECT_NE(show.output.find("state: failure"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("failure  .github/workflows/ci.yml/flaky"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("rerun by erin: new run 2 for 1 failed jobs"), std::string::npos) << show.output;
  auto shown_json = runs_cli({"show", "2", "--json"});
  ASSERT_EQ(shown_json.status, 0) << shown_json.output;
  EXPECT_EQ(json::parse(shown_json.output, nullptr, false).value("sha", ""), sha) << shown_json.output;

  auto filtered = runs_cli({"list", "--state", "success", "--json"});
  ASSERT_EQ(filtered.status, 0) << filtered.output;
  auto filtered_json = json::parse(filtered.output, nullptr, false);
  ASSERT_TRUE(filtered_json.is_object()) << filtered.output;
  ASSERT_EQ(filtered_json["runs"].size(), 1u);
  EXPECT_EQ(filtered_json["runs"][0]["id"], 2);

  // Clear errors: a finished run, an unknown run, a wrong token, no agent.
  auto late = runs_cli({"cancel", "2", "--token-file", admin_token_file()});
  EXPECT_EQ(late.status, 1);
  EXPECT_NE(late.output.find("run 2 already ended: success"), std::string::npos) << late.output;
  auto unknown = runs_cli({"show", "99"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.output.find("no run 99 on the agent (404)"), std::string::npos) << unknown.output;
  auto unknown_rerun = runs_cli({"rerun", "99", "--token-file", admin_token_file()});
  EXPECT_EQ(unknown_rerun.status, 2);
  EXPECT_NE(unknown_rerun.output.find("no run 99"), std::string::npos) << unknown_rerun.output;
  write_secret(dir_.path() / "wrong", "not-the-admin-token");
  auto refused = runs_cli({"rerun", "1", "--token-file", (dir_.path() / "wrong").string()});
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.output.find("refused the admin token (401)"), std::string::npos) << refused.output;
  auto missing = runs_cli({"cancel", "1", "--token-file", (dir_.path() / "absent").string()});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.output.find("cannot read the admin token file"), std::string::npos) << missing.output;
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(git::testing::free_port());
  auto down = runs_cli({"list"}, nowhere);
  EXPECT_EQ(down.status, 1);
  EXPECT_NE(down.output.find("cannot reach the agent at " + nowhere), std::string::npos) << down.output;
  EXPECT_EQ(run_count(), 2u) << "the refused actions queued nothing";
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(AdminActionsTest, CliCancelsARunningRun) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSlow}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "k-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  const std::int64_t run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_state(run) == "running"; }));
  auto cancel = runs_cli({"cancel", std::to_string(run), "--token-file", admin_token_file()});
  ASSERT_EQ(cancel.status, 0) << cancel.output;
  EXPECT_NE(cancel.output.find("cancel requested"), std::string::npos) << cancel.output;
  ASSERT_TRUE(eventually([&] { return run_finished(run); }, 60s));
  EXPECT_EQ(run_state(run), "cancelled");
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
