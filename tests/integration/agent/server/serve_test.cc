// `sandci serve` as a real process: signed webhooks over real HTTP, a real git
// daemon, real gVisor sandboxes, and a test forge that records the commit statuses.
#include <algorithm>
#include <atomic>
#include <iterator>

#include <gtest/gtest.h>

#include <set>

#include "agent/server/log_files.h"
#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class ServeTest : public AgentTest {};

const std::vector<std::string> kDiamondJobs = {"setup", "left", "right", "join"};

// The diamond's job contexts, and the workflow's too when asked.
std::vector<std::string> diamond_contexts(bool with_workflow) {
  std::vector<std::string> contexts;
  for (const auto& job : kDiamondJobs) contexts.push_back("sandci/ci/" + job);
  if (with_workflow) contexts.push_back("sandci/ci");
  return contexts;
}

// Whether the forge shows `state` as the newest state of every one of `contexts`.
bool all_ended_in(const TestForge& forge, const std::vector<std::string>& contexts, const std::string& state) {
  const auto seen = seen_statuses(forge.delivered());
  for (const auto& context : contexts) {
    auto states = states_of(seen, context);
    if (states.empty() || states.back() != state) return false;
  }
  return true;
}

// Push to status: one run, every job's context pending then success, on the
// pushed SHA, linking to the run's page; the page and the logs answer.
TEST_F(ServeTest, GithubPushRunsTheDiamondAndPostsStatuses) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();

  auto accepted = deliver(ForgeKind::github, "push", "d-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t run = run_id_of(accepted);
  ASSERT_GT(run, 0);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  ASSERT_TRUE(eventually([&] { return states_of(seen_statuses(forge.delivered()), "sandci/ci").size() >= 2; }));

  const auto seen = seen_statuses(forge.delivered());
  for (const auto& job : kDiamondJobs) {
    EXPECT_EQ(states_of(seen, "sandci/ci/" + job), (std::vector<std::string>{"pending", "success"})) << job;
  }
  EXPECT_EQ(states_of(seen, "sandci/ci"), (std::vector<std::string>{"pending", "success"}));
  for (const auto& s : seen) {
    EXPECT_EQ(s.sha, sha);
    EXPECT_EQ(s.target_url, agent_url() + "/runs/" + std::to_string(run));
    EXPECT_EQ(s.auth, std::string("Bearer ") + kApiToken);
  }
  for (const auto& r : forge.requests())
    EXPECT_EQ(r.target.rfind("/api/v3/repos/alice/hello/statuses/" + sha, 0), 0u) << r.target;

  auto page = get("/runs/" + std::to_string(run));
  EXPECT_EQ(page.status, 200);
  for (const auto& job : kDiamondJobs) EXPECT_NE(page.body.find(">" + job + "<"), std::string::npos) << job;
  auto log = get("/runs/" + std::to_string(run) + "/jobs/" + "%2Egithub%2Fworkflows%2Fci.yml%2Fjoin/log");
  EXPECT_EQ(log.status, 200);
  EXPECT_NE(log.body.find("join-ran"), std::string::npos) << log.body;
  EXPECT_EQ(agent_.terminate(), 0);
}

// GET /metrics: Prometheus text that promtool accepts, counting what happened.
TEST_F(ServeTest, MetricsCountDeliveriesRunsAndStatuses) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  const std::string push = github_push("alice/hello", clone_url("alice/hello"), sha);
  auto accepted = deliver(ForgeKind::github, "push", "m-1", push);
  ASSERT_EQ(deliver(ForgeKind::github, "push", "m-1", push).status, 200);
  ASSERT_EQ(deliver(ForgeKind::github, "push", "m-2", push, "wrong").status, 401);
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); }));
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));
  auto metrics = get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string& text = metrics.body;
  for (const std::string line :
       {"sandci_webhook_deliveries_total{forge=\"github\",result=\"queued\"} 1",
        "sandci_webhook_deliveries_total{forge=\"github\",result=\"duplicate\"} 1",
        "sandci_webhook_deliveries_total{forge=\"github\",result=\"bad_signature\"} 1",
        "sandci_runs{state=\"success\"} 1", "sandci_queue_depth 0", "sandci_capacity 2", "sandci_outbox_depth 0",
        "sandci_job_duration_seconds_count 4", "sandci_run_queue_wait_seconds_count 1",
        "sandci_mirror_fetch_seconds_count 1", "sandci_status_posts_total{forge=\"github\",result=\"delivered\"} 10",
        "sandci_outbox_oldest_age_seconds 0"})
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  EXPECT_TRUE(eventually([&] { return get("/metrics").body.find("\nsandci_sandboxes_alive 0\n") != std::string::npos; }))
      << "every job's sandbox is destroyed once the run is over";
  const fs::path file = dir_.path() / "metrics.txt";
  std::ofstream(file) << text;
  const std::string promtool = "/var/cache/sandci/tools/promtool";
  ASSERT_TRUE(fs::exists(promtool)) << "scripts/test-setup.sh installs promtool";
  auto check = git::testing::run({"sh", "-c", promtool + " check metrics < " + file.string()});
  EXPECT_EQ(check.status, 0) << check.output;
}

// A failing job: its context and the workflow's fail; jobs after it are skipped.
TEST_F(ServeTest, FailingJobFailsItsContextAndTheWorkflow) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", R"(name: ci
on: push
jobs:
  build:
    runs-on: linux
    steps:
      - run: echo compiling; exit 3
  deploy:
    needs: build
    runs-on: linux
    steps:
      - run: echo never
)"}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "d-fail", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); }));
  EXPECT_EQ(run_state(run), "failure");
  ASSERT_TRUE(eventually([&] { return states_of(seen_statuses(forge.delivered()), "sandci/ci").size() >= 2; }));
  const auto seen = seen_statuses(forge.delivered());
  EXPECT_EQ(states_of(seen, "sandci/ci/build"), (std::vector<std::string>{"pending", "failure"}));
  EXPECT_EQ(states_of(seen, "sandci/ci/deploy"), (std::vector<std::string>{"pending", "success"}))
      << "a skipped job reads as success, as required checks treat it";
  EXPECT_EQ(states_of(seen, "sandci/ci"), (std::vector<std::string>{"pending", "failure"}));
}

// GitLab: its token header, its API path, its states (running, never the same
// state twice for one context).
TEST_F(ServeTest, GitlabPushPostsGitlabStatuses) {
  TestForge forge;
  const std::string sha = make_repo("group/proj", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{"group/proj", "gitlab", ""}});
  start_agent();
  const std::string body =
      json{{"object_kind", "push"}, {"event_name", "push"}, {"before", std::string(40, '0')}, {"after", sha},
           {"ref", "refs/heads/main"}, {"checkout_sha", sha}, {"user_username", "alice"},
           {"project_id", 42},
           {"project", {{"id", 42}, {"path_with_namespace", "group/proj"}, {"git_http_url", clone_url("group/proj")},
                        {"default_branch", "main"}}},
           {"commits", json::array({{{"id", sha}, {"message", "first commit"}}})},
           {"total_commits_count", 1}}
          .dump();
  auto accepted = deliver(ForgeKind::gitlab, "Push Hook", "gl-1", body);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); }));
  // The outbox keeps the newest state per context: `running` may replace a
  // `pending` not yet sent (it did for the run's own context in a run where the
  // run started before its pending was out). What must hold, for the run and each
  // job: GitLab's order, no state twice, and success last.
  ASSERT_TRUE(eventually([&] {
    const auto states = states_of(seen_statuses(forge.delivered()), "sandci/ci");
    return !states.empty() && states.back() == "success";
  }));
  const auto seen = seen_statuses(forge.delivered());
  const std::vector<std::string> order = {"pending", "running", "success"};
  std::vector<std::string> contexts = {"sandci/ci"};
  for (const auto& job : kDiamondJobs) contexts.push_back("sandci/ci/" + job);
  for (const auto& context : contexts) {
    const auto states = states_of(seen, context);
    ASSERT_FALSE(states.empty()) << context;
    EXPECT_EQ(states.back(), "success") << context;
    auto at = order.begin();
    for (const auto& state : states) {
      at = std::find(at, order.end(), state);
      ASSERT_NE(at, order.end()) << context << ": " << ::testing::PrintToString(states);
      ++at;
    }
  }
  for (const auto& r : forge.requests()) {
    EXPECT_EQ(r.target, "/api/v4/projects/42/statuses/" + sha);
    EXPECT_EQ(r.headers.get("PRIVATE-TOKEN").value_or(""), kApiToken);
    EXPECT_EQ(r.body.value("ref", ""), "main");
  }
}

// Gitea signs with X-Gitea-Signature and takes `Authorization: token`.
TEST_F(ServeTest, GiteaPushOverHttpsForge) {
  fs::create_directories(dir_.path() / "tls");
  TestForge forge(dir_.path() / "tls");
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{"alice/hello", "gitea", ""}});
  start_agent();
  auto accepted = deliver(ForgeKind::gitea, "push", "gt-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(eventually([&] { return states_of(seen_statuses(forge.delivered()), "sandci/ci").size() >= 2; }));
  for (const auto& s : seen_statuses(forge.delivered())) EXPECT_EQ(s.auth, std::string("token ") + kApiToken);
  EXPECT_EQ(forge.requests().front().target.rfind("/api/v1/repos/alice/hello/statuses/", 0), 0u);
}

// Every kind of bad request gets its answer, nothing starts, the agent goes on.
TEST_F(ServeTest, BadDeliveriesGetClearAnswersAndStartNothing) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  const std::string push = github_push("alice/hello", clone_url("alice/hello"), sha);

  auto wrong = deliver(ForgeKind::github, "push", "b-1", push, "not-the-secret");
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  http::ClientRequest unsigned_request;
  unsigned_request.method = "POST";
  unsigned_request.url = agent_url() + "/webhook";
  unsigned_request.body = push;
  unsigned_request.headers.set("X-GitHub-Event", "push");
  unsigned_request.headers.set("X-GitHub-Delivery", "b-2");
  EXPECT_EQ(client_.send(unsigned_request)->status, 401);
  auto unknown = deliver(ForgeKind::github, "push", "b-3", github_push("eve/other", clone_url("alice/hello"), sha));
  EXPECT_EQ(unknown.status, 401) << unknown.body;
  EXPECT_EQ(deliver(ForgeKind::github, "push", "b-4", "{not json").status, 400);
  EXPECT_EQ(deliver(ForgeKind::github, "push", "b-5", "[1,2,3]").status, 400);
  auto bad_sha = json::parse(push);
  bad_sha["after"] = "xyz";
  EXPECT_EQ(deliver(ForgeKind::github, "push", "b-6", bad_sha.dump()).status, 400);
  auto ping = deliver(ForgeKind::github, "ping", "b-7",
                      json{{"zen", "hi"}, {"hook_id", 1}, {"repository", {{"full_name", "alice/hello"}}}}.dump());
  EXPECT_EQ(ping.status, 200);
  EXPECT_NE(ping.body.find("pong"), std::string::npos);
  auto deleted = json::parse(push);
  deleted["after"] = std::string(40, '0');
  deleted["deleted"] = true;
  auto ignored = deliver(ForgeKind::github, "push", "b-8", deleted.dump());
  EXPECT_EQ(ignored.status, 200);
  EXPECT_NE(ignored.body.find("ignored"), std::string::npos) << ignored.body;
  auto issues = deliver(ForgeKind::github, "issues", "b-9",
                        json{{"action", "opened"}, {"repository", {{"full_name", "alice/hello"}}}}.dump());
  EXPECT_EQ(issues.status, 200);
  EXPECT_NE(issues.body.find("ignored"), std::string::npos) << issues.body;
  EXPECT_EQ(get("/webhook").status, 405);
  http::ClientRequest huge;
  huge.method = "POST";
  huge.url = agent_url() + "/webhook";
  huge.body = std::string(26u << 20, 'x');
  huge.headers.set("X-GitHub-Event", "push");
  huge.timeout = 30s;
  auto too_big = client_.send(huge);
  EXPECT_TRUE(!too_big || too_big->status == 413) << (too_big ? too_big->body : too_big.error());

  // Nothing of that queued a run; a good delivery still does, and only once.
  auto health = json::parse(get("/healthz").body);
  EXPECT_EQ(health["queued"].get<int>() + health["running"].get<int>(), 0) << health.dump();
  auto first = deliver(ForgeKind::github, "push", "good-1", push);
  EXPECT_EQ(first.status, 202) << first.body;
  auto replay = deliver(ForgeKind::github, "push", "good-1", push);
  EXPECT_EQ(replay.status, 200);
  EXPECT_NE(replay.body.find("duplicate"), std::string::npos) << replay.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(first)); }));
  EXPECT_EQ(get("/runs/2").status, 404) << "the replay queued a second run";
}

// A pull request from a fork runs the fork's head commit, without secrets.
TEST_F(ServeTest, ForkPullRequestGetsNoSecrets) {
  TestForge forge;
  const char* workflow = R"(name: ci
on: pull_request
jobs:
  show:
    runs-on: linux
    steps:
      - run: 'if [ -z "${{ secrets.DEPLOY_KEY }}" ]; then echo no-secret-here; else echo has-a-secret; fi'
)";
  make_repo("alice/hello", {{".github/workflows/ci.yml", workflow}});
  const std::string fork_sha = make_repo("mallory/hello", {{".github/workflows/ci.yml", workflow}, {"x", "fork"}});
  write_config(forge, {{}});
  start_agent();
  auto pr = [&](const std::string& head_repo, const std::string& head_clone) {
    return json{{"action", "opened"},
                {"number", 7},
                {"pull_request",
                 {{"number", 7},
                  {"head", {{"sha", fork_sha}, {"ref", "feature"}, {"repo", {{"full_name", head_repo}, {"clone_url", head_clone}}}}},
                  {"base", {{"ref", "main"}, {"repo", {{"full_name", "alice/hello"}}}}}}},
                {"repository", {{"full_name", "alice/hello"}, {"clone_url", clone_url("alice/hello")}}},
                {"sender", {{"login", "mallory"}}}}
        .dump();
  };
  auto accepted = deliver(ForgeKind::github, "pull_request", "pr-1", pr("mallory/hello", clone_url("mallory/hello")));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  auto log = get("/runs/" + std::to_string(run) + "/jobs/%2Egithub%2Fworkflows%2Fci.yml%2Fshow/log");
  EXPECT_NE(log.body.find("no-secret-here"), std::string::npos) << log.body;
  EXPECT_EQ(log.body.find(kJobSecret), std::string::npos);
}

// The forge is down (500), then rate-limits (429, Retry-After), then takes
// statuses: every context still ends in its final state, none is sent twice
// once delivered.
TEST_F(ServeTest, StatusesSurviveAForgeOutage) {
  TestForge forge;
  forge.script([](const TestForge::Request&, int number) -> std::optional<http::HttpResponse> {
    if (number <= 3) return http::HttpResponse::json(500, R"({"message":"down for maintenance"})");
    if (number == 4) {
      auto r = http::HttpResponse::json(429, R"({"message":"slow down"})");
      r.headers.set("Retry-After", "1");
      return r;
    }
    return std::nullopt;
  });
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "o-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202);
  ASSERT_TRUE(eventually([&] { return all_ended_in(forge, diamond_contexts(false), "success"); }, 180s))
      << slurp(log_file());
  EXPECT_GT(forge.requests().size(), forge.delivered().size()) << "the outage was seen";
  std::set<std::pair<std::string, std::string>> delivered;
  for (const auto& s : seen_statuses(forge.delivered()))
    EXPECT_TRUE(delivered.insert({s.context, s.state}).second) << s.context << " " << s.state << " sent twice";
  EXPECT_NE(slurp(log_file()).find("event=status_retry"), std::string::npos);
}

// While the forge refuses statuses, /metrics shows how long the oldest has waited
// (what an operator alerts on); once they go out, it is back to 0.
TEST_F(ServeTest, MetricsShowTheAgeOfTheOldestUndeliveredStatus) {
  TestForge forge;
  std::atomic<bool> forge_down = true;
  forge.script([&forge_down](const TestForge::Request&, int) -> std::optional<http::HttpResponse> {
    if (forge_down) return http::HttpResponse::json(500, R"({"message":"down for maintenance"})");
    return std::nullopt;
  });
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "age-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202);
  auto oldest_age = [&] {
    const std::string text = get("/metrics").body;
    const std::string name = "\nsandci_outbox_oldest_age_seconds ";
    const auto at = text.find(name);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size()));
  };
  ASSERT_TRUE(eventually([&] { return oldest_age() >= 1.0; }, 60s)) << "the first pending status waits a second or more";
  forge_down = false;
  ASSERT_TRUE(eventually([&] { return all_ended_in(forge, diamond_contexts(false), "success"); }, 180s))
      << slurp(log_file());
  EXPECT_TRUE(eventually([&] { return oldest_age() == 0.0; }, 60s));
}

// A forge that accepts the connection and never answers: the request times
// out, the sender goes on with the others and tries that one again.
TEST_F(ServeTest, ForgeThatHangsIsTimedOutAndRetried) {
  TestForge forge;
  forge.script([](const TestForge::Request&, int number) -> std::optional<http::HttpResponse> {
    if (number == 1) return http::HttpResponse{0, {}, ""};  // status 0: never answered
    return std::nullopt;
  });
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "h-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202);
  ASSERT_TRUE(eventually([&] { return all_ended_in(forge, diamond_contexts(true), "success"); }, 180s))
      << slurp(log_file());
  EXPECT_NE(slurp(log_file()).find("timed out"), std::string::npos) << "the hung request was not timed out";
}

// A permanent refusal (422) is recorded with the forge's reason, not retried.
TEST_F(ServeTest, RefusedStatusIsNotRetried) {
  TestForge forge;
  forge.script([](const TestForge::Request&, int) -> std::optional<http::HttpResponse> {
    return http::HttpResponse::json(422, R"({"message":"Validation Failed"})");
  });
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n"}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "r-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); }));
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 30s));
  const auto tried = forge.requests().size();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(forge.requests().size(), tried) << "a refused status was sent again";
  EXPECT_NE(slurp(log_file()).find("Validation Failed"), std::string::npos);
}

// A newer push to the branch cancels the older run; its statuses say so.
TEST_F(ServeTest, NewerPushSupersedesTheOlderRun) {
  TestForge forge;
  const char* slow = "on: push\njobs:\n  slow:\n    runs-on: x\n    steps:\n      - run: sleep 60\n";
  const std::string first = make_repo("alice/hello", {{".github/workflows/ci.yml", slow}});
  write_config(forge, {{}});
  start_agent();
  auto older = deliver(ForgeKind::github, "push", "s-1", github_push("alice/hello", clone_url("alice/hello"), first));
  ASSERT_EQ(older.status, 202);
  ASSERT_TRUE(eventually([&] { return run_state(run_id_of(older)) == "running"; }));
  const std::string second =
      repo().commit({{".github/workflows/ci.yml", "on: push\njobs:\n  slow:\n    runs-on: x\n    steps:\n      - run: 'true'\n"}}, "fix");
  repo().push("HEAD:refs/heads/main");
  auto newer = deliver(ForgeKind::github, "push", "s-2", github_push("alice/hello", clone_url("alice/hello"), second));
  ASSERT_EQ(newer.status, 202);
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(older)) && run_finished(run_id_of(newer)); }));
  EXPECT_EQ(run_state(run_id_of(older)), "cancelled");
  EXPECT_EQ(run_state(run_id_of(newer)), "success");
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : seen_statuses(forge.delivered()))
      if (s.sha == first && s.context == "sandci/ci.yml/slow" && s.state == "error") return true;
    return false;
  }));
}

// A push whose commit the agent cannot fetch yet leaves `error` on the run-level
// context `sandci`; once the commit is there, a later run of the same commit
// that succeeds posts its final state there, so the error does not stay.
TEST_F(ServeTest, LaterSuccessfulRunOfTheCommitClearsTheFetchError) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  const std::string sha = repo().commit({{"notes.txt", "pushed a moment later\n"}}, "notes");
  const std::string push = github_push("alice/hello", clone_url("alice/hello"), sha);
  auto failed = deliver(ForgeKind::github, "push", "f-1", push);
  ASSERT_EQ(failed.status, 202) << failed.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(failed)); })) << slurp(log_file());
  EXPECT_EQ(run_state(run_id_of(failed)), "error");
  ASSERT_TRUE(eventually([&] { return !states_of(seen_statuses(forge.delivered()), "sandci").empty(); }));
  EXPECT_EQ(states_of(seen_statuses(forge.delivered()), "sandci"), std::vector<std::string>{"error"});

  repo().push("HEAD:refs/heads/main");
  auto again = deliver(ForgeKind::github, "push", "f-2", push);
  ASSERT_EQ(again.status, 202) << again.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(again)); })) << slurp(log_file());
  EXPECT_EQ(run_state(run_id_of(again)), "success");
  ASSERT_TRUE(eventually([&] { return states_of(seen_statuses(forge.delivered()), "sandci").size() >= 2; }))
      << slurp(log_file());
  EXPECT_EQ(states_of(seen_statuses(forge.delivered()), "sandci"), (std::vector<std::string>{"error", "success"}));
  for (const auto& s : seen_statuses(forge.delivered())) {
    EXPECT_EQ(s.sha, sha);
    if (s.context == "sandci" && s.state == "success") {
      EXPECT_EQ(s.target_url, agent_url() + "/runs/" + std::to_string(run_id_of(again)));
    }
  }
}

// A run that never posted on `sandci` leaves it alone when it ends.
TEST_F(ServeTest, SuccessfulRunPostsNothingOnTheRunLevelContext) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "n-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); })) << slurp(log_file());
  ASSERT_TRUE(eventually([&] { return all_ended_in(forge, diamond_contexts(true), "success"); }));
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));
  EXPECT_TRUE(states_of(seen_statuses(forge.delivered()), "sandci").empty());
}

// Three jobs ready at once (two workflows side by side) and two slots (capacity
// 2): the third waits for a slot, and its started_ms is when it got one, after
// another job ended, not when its workflow's executor handed it over.
TEST_F(ServeTest, JobStartsWhenItGetsACapacitySlotNotWhenItIsDispatched) {
  TestForge forge;
  const char* checks = R"(name: checks
on: push
jobs:
  lint:
    runs-on: linux
    steps:
      - run: sleep 2; echo linted
  unit:
    runs-on: linux
    steps:
      - run: sleep 2; echo tested
)";
  const char* docs = R"(name: docs
on: push
jobs:
  build:
    runs-on: linux
    steps:
      - run: sleep 2; echo built
)";
  const std::string sha =
      make_repo("alice/hello", {{".github/workflows/checks.yml", checks}, {".github/workflows/docs.yml", docs}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "slot-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  auto jobs = json::parse(get("/api/runs/" + std::to_string(run)).body)["jobs"];
  ASSERT_EQ(jobs.size(), 3u) << jobs.dump();
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;  // (started, finished)
  for (const auto& job : jobs) spans.emplace_back(job["started_ms"].get<std::int64_t>(), job["finished_ms"].get<std::int64_t>());
  std::sort(spans.begin(), spans.end());
  EXPECT_GT(spans[0].first, 0);
  EXPECT_GE(spans[2].first, std::min(spans[0].second, spans[1].second))
      << "the job that waited for a slot counts as started while it waited\n" << jobs.dump();
}

// A workflow's concurrency group: with cancel_superseded off, a second push
// waits for the first run of the group to end instead of running beside it.
TEST_F(ServeTest, ConcurrencyGroupSerialisesRuns) {
  TestForge forge;
  const char* workflow = R"(name: deploy
on: push
concurrency:
  group: deploy-${{ github.ref }}
jobs:
  ship:
    runs-on: linux
    steps:
      - run: sleep 2; echo shipped
)";
  const std::string first = make_repo("alice/hello", {{".github/workflows/deploy.yml", workflow}});
  write_config(forge, {{"alice/hello", "github", "    cancel_superseded: false\n"}});
  start_agent();
  auto one = deliver(ForgeKind::github, "push", "c-1", github_push("alice/hello", clone_url("alice/hello"), first));
  ASSERT_EQ(one.status, 202);
  const std::string second = repo().commit({{"x", "2"}}, "second");
  repo().push("HEAD:refs/heads/main");
  auto two = deliver(ForgeKind::github, "push", "c-2", github_push("alice/hello", clone_url("alice/hello"), second));
  ASSERT_EQ(two.status, 202);
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(one)) && run_finished(run_id_of(two)); }));
  auto a = json::parse(get("/api/runs/" + std::to_string(run_id_of(one))).body);
  auto b = json::parse(get("/api/runs/" + std::to_string(run_id_of(two))).body);
  EXPECT_EQ(a["state"], "success");
  EXPECT_EQ(b["state"], "success");
  ASSERT_EQ(a["jobs"].size(), 1u);
  ASSERT_EQ(b["jobs"].size(), 1u);
  EXPECT_GE(b["jobs"][0]["started_ms"].get<std::int64_t>(), a["jobs"][0]["finished_ms"].get<std::int64_t>())
      << "the second run's job started before the first one's ended";
}

// A job flooding its log stops at limits.job_log_mib; the job and the agent go on.
TEST_F(ServeTest, FloodedLogStopsAtItsLimit) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", R"(name: ci
on: push
jobs:
  flood:
    runs-on: linux
    steps:
      - run: yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 4000000; echo
      - run: echo after-the-flood
)"}});
  write_config(forge, {{}}, "limits: {job_log_mib: 1}\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "f-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202);
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); }));
  EXPECT_EQ(run_state(run), "success");
  // Kept as flood.log.gz once the run has ended; open_job_log reads either form.
  const fs::path log = state() / "runs" / std::to_string(run) / "logs" / "ci" / "flood.log";
  auto stream = server::open_job_log(log);
  ASSERT_NE(stream, nullptr) << "no log at " << log;
  const std::string text{std::istreambuf_iterator<char>(*stream), std::istreambuf_iterator<char>()};
  EXPECT_LE(text.size(), (1u << 20) + 4096);
  EXPECT_NE(text.find("reached its limit of 1 MiB"), std::string::npos);
  EXPECT_EQ(text.find("after-the-flood"), std::string::npos) << "lines past the limit are left out";
  EXPECT_EQ(get("/healthz").status, 200);
}

// `sandci enqueue` starts a run by hand for a ref, with the admin token only.
TEST_F(ServeTest, EnqueueByHand) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto r = git::testing::run({SANDCI_BINARY, "enqueue", "alice/hello", "--ref", "main", "--agent", agent_url(),
                              "--token-file", (dir_.path() / "secrets/admin").string()});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("queued run 1"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] { return run_finished(1); }));
  EXPECT_EQ(run_state(1), "success");
  ASSERT_TRUE(eventually([&] { return !states_of(seen_statuses(forge.delivered()), "sandci/ci/join").empty(); }));
  EXPECT_EQ(seen_statuses(forge.delivered()).front().sha, sha) << "the ref was resolved to its commit";

  write_secret(dir_.path() / "wrong", "not-the-admin-token");
  auto refused = git::testing::run({SANDCI_BINARY, "enqueue", "alice/hello", "--agent", agent_url(), "--token-file",
                                    (dir_.path() / "wrong").string()});
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output.find("401"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace sandci::agent::testing
