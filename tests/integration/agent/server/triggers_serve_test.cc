// The agent's new triggers end to end, against the real daemon, a real git daemon
// and real sandboxes: a `schedule:` workflow of the default branch runs at its cron
// time, and a pull request runs the BASE branch's pull_request_target workflow.
#include <gtest/gtest.h>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class TriggersServeTest : public AgentTest {
 protected:
  // The runs of the agent with event `event`, newest first.
  std::vector<json> runs_of(const std::string& event) {
    std::vector<json> out;
    auto listed = json::parse(get("/api/runs?limit=100").body, nullptr, false);
    if (!listed.is_object() || !listed["runs"].is_array()) return out;
    for (const auto& run : listed["runs"])
      if (run.value("event", "") == event) out.push_back(run);
    return out;
  }

  std::string job_log(std::int64_t run, const std::string& workflow_file, const std::string& job) {
    std::string escaped;
    for (char c : workflow_file + "/" + job) escaped += c == '.' ? "%2E" : c == '/' ? "%2F" : std::string(1, c);
    return get("/runs/" + std::to_string(run) + "/jobs/" + escaped + "/log").body;
  }
};

// Every minute (`* * * * *`): the agent reads main through its mirror, queues one
// run on main's HEAD at the next minute with event schedule and the cron line in
// github.event.schedule; only the scheduled workflow runs.
TEST_F(TriggersServeTest, ScheduledWorkflowRunsFromTheDefaultBranch) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/nightly.yml", R"(name: nightly
on:
  schedule:
    - cron: '* * * * *'
jobs:
  tick:
    runs-on: linux
    steps:
      - run: echo "event=${{ github.event_name }} cron=${{ github.event.schedule }} ref=$GITHUB_REF"
)"},
                                                    {".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();

  ASSERT_TRUE(eventually([&] { return !runs_of("schedule").empty(); }, 150s)) << slurp(log_file());
  const json run = runs_of("schedule").back();  // the first one
  const std::int64_t id = run["id"].get<std::int64_t>();
  EXPECT_EQ(run["sha"], sha);
  EXPECT_EQ(run["ref"], "refs/heads/main");
  EXPECT_EQ(run["title"].get<std::string>().rfind("schedule '* * * * *' of .github/workflows/nightly.yml (", 0), 0u)
      << run.dump();
  ASSERT_TRUE(eventually([&] { return run_finished(id); })) << slurp(log_file());
  EXPECT_EQ(run_state(id), "success");
  const std::string log = job_log(id, ".github/workflows/nightly.yml", "tick");
  EXPECT_NE(log.find("event=schedule cron=* * * * * ref=refs/heads/main"), std::string::npos) << log;
  // The diamond (push and pull_request) is not part of a schedule run.
  auto jobs = json::parse(get("/api/runs/" + std::to_string(id)).body, nullptr, false);
  ASSERT_TRUE(jobs.is_object() && jobs["jobs"].is_array()) << jobs.dump();
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs["jobs"][0]["name"], "tick");
  // No fire time was queued twice.
  std::set<std::string> titles;
  for (const auto& r : runs_of("schedule")) EXPECT_TRUE(titles.insert(r["title"].get<std::string>()).second) << r.dump();
  EXPECT_EQ(agent_.terminate(), 0);
}

// A pull request from a fork: the base's pull_request_target workflow runs on the
// base's commit with the repository's secrets (the fork's changed copy of the
// workflow does not run), and its statuses go on the pull request's head.
TEST_F(TriggersServeTest, PullRequestTargetRunsTheBaseWorkflowWithSecrets) {
  TestForge forge;
  const char* base_workflow = R"(name: triage
on: pull_request_target
jobs:
  label:
    runs-on: linux
    steps:
      - run: 'echo "base-copy event=${{ github.event_name }} base=$GITHUB_BASE_REF head=$GITHUB_HEAD_REF sha=$GITHUB_SHA"'
      - run: 'if [ -n "${{ secrets.DEPLOY_KEY }}" ]; then echo has-the-secret; fi'
)";
  const char* fork_workflow = R"(name: triage
on: pull_request_target
jobs:
  label:
    runs-on: linux
    steps:
      - run: echo fork-copy-ran
)";
  const std::string base_sha = make_repo("alice/hello", {{".github/workflows/triage.yml", base_workflow}});
  const std::string fork_sha = make_repo("mallory/hello", {{".github/workflows/triage.yml", fork_workflow}});
  write_config(forge, {{}});
  start_agent();
  const json pr = {{"action", "opened"},
                   {"number", 9},
                   {"pull_request",
                    {{"number", 9},
                     {"head", {{"sha", fork_sha}, {"ref", "feature"},
                               {"repo", {{"full_name", "mallory/hello"}, {"clone_url", clone_url("mallory/hello")}}}}},
                     {"base", {{"ref", "main"}, {"sha", base_sha}, {"repo", {{"full_name", "alice/hello"}}}}}}},
                   {"repository", {{"full_name", "alice/hello"}, {"clone_url", clone_url("alice/hello")}}},
                   {"sender", {{"login", "mallory"}}}};
  auto accepted = deliver(ForgeKind::github, "pull_request", "prt-1", pr.dump());
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto ids = json::parse(accepted.body)["runs"];
  ASSERT_EQ(ids.size(), 2u) << accepted.body;
  const std::int64_t head_run = ids[0].get<std::int64_t>(), target_run = ids[1].get<std::int64_t>();
  ASSERT_TRUE(eventually([&] { return run_finished(head_run) && run_finished(target_run); })) << slurp(log_file());
  EXPECT_EQ(run_state(head_run), "success");  // the fork's pull_request run has nothing to run
  EXPECT_EQ(run_state(target_run), "success");

  auto target = json::parse(get("/api/runs/" + std::to_string(target_run)).body);
  EXPECT_EQ(target["event"], "pull_request_target");
  EXPECT_EQ(target["ref"], "refs/heads/main");
  const std::string log = job_log(target_run, ".github/workflows/triage.yml", "label");
  // The base branch's HEAD, taken when the run started.
  EXPECT_NE(log.find("base-copy event=pull_request_target base=main head=feature sha=" + base_sha),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("has-the-secret"), std::string::npos) << log;
  EXPECT_EQ(log.find("fork-copy-ran"), std::string::npos) << log;
  EXPECT_EQ(log.find(kJobSecret), std::string::npos) << "masked";

  ASSERT_TRUE(eventually([&] {
    for (const auto& s : seen_statuses(forge.delivered()))
      if (s.state == "success") return true;
    return false;
  }, 60s));
  for (const auto& s : seen_statuses(forge.delivered())) EXPECT_EQ(s.sha, fork_sha) << s.context;
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
