// The admin routes on a real SQLite store: cancel, re-run (all jobs or failed ones),
// the action record, the run listing, and that without the admin token nothing changes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/server/admin_auth.h"
#include "agent/server/routes.h"
#include "unit/agent/store/store_test_support.h"

namespace sandci::agent::server {
namespace {

using nlohmann::json;
using store::testing::TempDir;

constexpr const char* kToken = "admin-token-4411";

class AdminRoutesTest : public ::testing::Test {
 protected:
  AdminRoutesTest() {
    config_.public_url = "http://127.0.0.1:9";
    config_.state_dir = dir_.path();
    config_.admin_token = config::Secret(kToken);
    // Public pages: the listing here is read without a token.
    for (const char* name : {"acme/app", "acme/lib"}) {
      config::RepositoryConfig repository;
      repository.name = name;
      repository.pages_public = true;
      config_.repositories.push_back(repository);
    }
    store_ = store::testing::open_store(dir_.path() / "state.db");
    intake_ = std::make_unique<WebhookIntake>(config_, *store_, [this] { return now_; },
                                              [](std::int64_t, const std::vector<std::int64_t>&) {});
    routes_ = std::make_unique<Routes>(config_, *store_, *intake_, [this] { return now_; },
                                       [this](std::int64_t id) { woken_.push_back(id); });
  }

  http::HttpResponse call(const std::string& method, const std::string& target, const std::string& token = kToken,
                          const std::string& actor = "") {
    http::HttpRequest request;
    request.method = method;
    request.target = target;
    if (!token.empty()) request.headers.set("Authorization", "Bearer " + token);
    if (!actor.empty()) request.headers.set("X-Sandci-Actor", actor);
    return routes_->handle(request);
  }

  static json body(const http::HttpResponse& response) { return json::parse(response.body, nullptr, false); }

  std::int64_t queued_run(const std::string& repository = "acme/app", const std::string& ref = "refs/heads/main") {
    return *store_->enqueue_run(store::testing::make_run(repository, ref), now_++);
  }

  // A run the worker ran and finished with `state`; its jobs as given.
  std::int64_t finished_run(store::RunState state,
                            const std::vector<std::pair<std::string, store::JobState>>& jobs = {}) {
    const std::int64_t id = queued_run();
    auto claimed = store_->claim_next_run("agent", 60'000, now_++);
    EXPECT_TRUE(claimed && *claimed && (*claimed)->id == id);
    for (const auto& [key, job_state] : jobs) {
      store::JobRecord job;
      job.run_id = id;
      job.key = key;
      job.state = job_state;
      EXPECT_TRUE(store_->put_job((*claimed)->claim(), job).value_or(false));
    }
    EXPECT_TRUE(store_->finish_run((*claimed)->claim(), state, "", now_++).value_or(false));
    return id;
  }

  std::int64_t run_count() {
    store::RunFilter all;
    all.limit = 1000;
    return static_cast<std::int64_t>(store_->list_runs(all)->size());
  }

  TempDir dir_;
  config::AgentConfig config_;
  std::int64_t now_ = 10'000;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<WebhookIntake> intake_;
  std::unique_ptr<Routes> routes_;
  std::vector<std::int64_t> woken_;
};

TEST(SameSecret, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(same_secret("abc", "abc"));
  EXPECT_FALSE(same_secret("abc", "abd"));
  EXPECT_FALSE(same_secret("abc", "abcd"));
  EXPECT_FALSE(same_secret("", "abc"));
}

TEST(AdminActor, HeaderNameCleanedOrAdmin) {
  http::HttpRequest request;
  EXPECT_EQ(admin_actor(request), "admin");
  request.headers.set("X-Sandci-Actor", "   ");
  EXPECT_EQ(admin_actor(request), "admin");
  request.headers.set("X-Sandci-Actor", "  carol ");
  EXPECT_EQ(admin_actor(request), "carol");
  request.headers.set("X-Sandci-Actor", "a\x01" "b\xc3\xa9");
  EXPECT_EQ(admin_actor(request), "a?b??");
  request.headers.set("X-Sandci-Actor", std::string(100, 'x'));
  EXPECT_EQ(admin_actor(request), std::string(64, 'x'));
}

TEST_F(AdminRoutesTest, CancelOfAQueuedRunEndsItAndRecordsWho) {
  const std::int64_t id = queued_run();
  auto response = call("POST", "/api/runs/" + std::to_string(id) + "/cancel", kToken, "carol");
  ASSERT_EQ(response.status, 202) << response.body;
  EXPECT_EQ(body(response)["state"], "cancelled");
  EXPECT_EQ((*store_->get_run(id))->state, store::RunState::cancelled);
  auto actions = body(call("GET", "/api/runs/" + std::to_string(id) + "/actions"));
  ASSERT_EQ(actions["actions"].size(), 1u);
  EXPECT_EQ(actions["actions"][0]["action"], "cancel");
  EXPECT_EQ(actions["actions"][0]["actor"], "carol");
  EXPECT_EQ(actions["actions"][0]["at_ms"], now_);
}

TEST_F(AdminRoutesTest, CancelOfARunningRunAsksItsWorker) {
  const std::int64_t id = queued_run();
  ASSERT_TRUE(store_->claim_next_run("agent", 60'000, now_));
  auto response = call("POST", "/api/runs/" + std::to_string(id) + "/cancel");
  ASSERT_EQ(response.status, 202) << response.body;
  EXPECT_EQ(body(response)["state"], "running");
  EXPECT_TRUE(store_->cancel_requested(id).value_or(false));
  EXPECT_EQ(store_->actions_of(id)->at(0).actor, "admin");
}

TEST_F(AdminRoutesTest, CancelOfAFinishedOrUnknownRunIsRefused) {
  const std::int64_t id = finished_run(store::RunState::success);
  EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(id) + "/cancel").status, 409);
  EXPECT_EQ(call("POST", "/api/runs/999/cancel").status, 404);
  EXPECT_EQ(call("POST", "/api/runs/abc/cancel").status, 404);
  EXPECT_TRUE(store_->actions_of(id)->empty());
}

TEST_F(AdminRoutesTest, WithoutTheTokenNothingChanges) {
  const std::int64_t done = finished_run(store::RunState::failure, {{"ci.yml/a", store::JobState::failure}});
  const std::int64_t queued = queued_run();
  for (const std::string& token : std::vector<std::string>{"", "wrong", std::string(kToken) + "x"}) {
    EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(queued) + "/cancel", token).status, 401) << token;
    EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(done) + "/rerun", token).status, 401) << token;
    EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(done) + "/rerun?failed_only=1", token).status, 401);
    EXPECT_EQ(call("POST", "/api/runs/999/cancel", token).status, 401) << "no probing for run ids";
  }
  http::HttpRequest basic;
  basic.method = "POST";
  basic.target = "/api/runs/" + std::to_string(queued) + "/cancel";
  basic.headers.set("Authorization", std::string("Basic ") + kToken);
  EXPECT_EQ(routes_->handle(basic).status, 401);
  EXPECT_EQ((*store_->get_run(queued))->state, store::RunState::queued);
  EXPECT_EQ(run_count(), 2);
  EXPECT_TRUE(store_->actions_of(queued)->empty());
  EXPECT_TRUE(store_->actions_of(done)->empty());
  EXPECT_TRUE(woken_.empty());
}

TEST_F(AdminRoutesTest, WithoutAConfiguredTokenActionsAreForbidden) {
  config_.admin_token.reset();
  const std::int64_t id = queued_run();
  auto response = call("POST", "/api/runs/" + std::to_string(id) + "/cancel");
  EXPECT_EQ(response.status, 403);
  EXPECT_NE(response.body.find("no admin_token is configured"), std::string::npos);
  EXPECT_EQ((*store_->get_run(id))->state, store::RunState::queued);
}

TEST_F(AdminRoutesTest, ActionsNeedPost) {
  const std::int64_t id = queued_run();
  EXPECT_EQ(call("GET", "/api/runs/" + std::to_string(id) + "/cancel").status, 405);
  EXPECT_EQ(call("GET", "/api/runs/" + std::to_string(id) + "/rerun").status, 405);
  EXPECT_EQ((*store_->get_run(id))->state, store::RunState::queued);
}

TEST_F(AdminRoutesTest, RerunQueuesACopyAndWakesTheWorker) {
  const std::int64_t id = finished_run(store::RunState::failure);
  auto response = call("POST", "/api/runs/" + std::to_string(id) + "/rerun", kToken, "dave");
  ASSERT_EQ(response.status, 202) << response.body;
  const std::int64_t copy = body(response)["run"].get<std::int64_t>();
  EXPECT_NE(copy, id);
  EXPECT_EQ(body(response)["rerun_of"], id);
  EXPECT_EQ(body(response)["url"], "http://127.0.0.1:9/runs/" + std::to_string(copy));
  EXPECT_EQ(woken_, std::vector<std::int64_t>{copy});
  auto run = *store_->get_run(copy);
  EXPECT_EQ(run->trigger, "rerun");
  EXPECT_EQ(run->state, store::RunState::queued);
  EXPECT_TRUE(run->only_jobs.empty());
  auto actions = store_->actions_of(id);
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].actor, "dave");
  EXPECT_EQ((*actions)[0].detail, "new run " + std::to_string(copy));
}

TEST_F(AdminRoutesTest, RerunOfFailedJobsNamesEveryJobThatDidNotSucceed) {
  const std::int64_t id = finished_run(store::RunState::failure, {{"ci.yml/build", store::JobState::success},
                                                                  {"ci.yml/test", store::JobState::failure},
                                                                  {"ci.yml/deploy", store::JobState::skipped},
                                                                  {"lint.yml/lint", store::JobState::success}});
  auto response = call("POST", "/api/runs/" + std::to_string(id) + "/rerun?failed_only=1");
  ASSERT_EQ(response.status, 202) << response.body;
  const std::vector<std::string> expected{"ci.yml/test", "ci.yml/deploy"};
  EXPECT_EQ(body(response)["jobs"], json(expected));
  EXPECT_EQ((*store_->get_run(body(response)["run"].get<std::int64_t>()))->only_jobs, expected);
}

TEST_F(AdminRoutesTest, RerunOfFailedJobsWithNoneFailedIsRefused) {
  const std::int64_t id = finished_run(store::RunState::success, {{"ci.yml/build", store::JobState::success}});
  EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(id) + "/rerun?failed_only=1").status, 409);
  EXPECT_EQ(run_count(), 1);
}

TEST_F(AdminRoutesTest, RerunOfAnUnfinishedRunOrBadParameterIsRefused) {
  const std::int64_t done = finished_run(store::RunState::failure);
  const std::int64_t id = queued_run();
  EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(id) + "/rerun").status, 409);
  EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(done) + "/rerun?failed_only=maybe").status, 400);
  EXPECT_EQ(call("POST", "/api/runs/" + std::to_string(done) + "/rerun?jobs=all").status, 400);
  EXPECT_EQ(call("POST", "/api/runs/424242/rerun").status, 404);
  EXPECT_EQ(run_count(), 2);
}

TEST_F(AdminRoutesTest, ListFiltersAndPages) {
  const std::int64_t a = queued_run("acme/app", "refs/heads/main");
  const std::int64_t b = queued_run("acme/app", "refs/heads/dev");
  const std::int64_t c = queued_run("acme/lib", "refs/heads/main");
  ASSERT_EQ(call("POST", "/api/runs/" + std::to_string(b) + "/cancel").status, 202);

  auto ids = [&](const std::string& query) {
    auto response = call("GET", "/api/runs" + query, "");
    EXPECT_EQ(response.status, 200) << query << ": " << response.body;
    std::vector<std::int64_t> out;
    const json page = body(response);
    for (const auto& run : page["runs"]) out.push_back(run["id"].get<std::int64_t>());
    return out;
  };
  EXPECT_EQ(ids(""), (std::vector<std::int64_t>{c, b, a}));
  EXPECT_EQ(ids("?repository=acme/app"), (std::vector<std::int64_t>{b, a}));
  EXPECT_EQ(ids("?repository=acme%2Fapp&ref=refs%2Fheads%2Fmain"), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(ids("?state=cancelled"), (std::vector<std::int64_t>{b}));
  EXPECT_EQ(ids("?limit=2"), (std::vector<std::int64_t>{c, b}));
  EXPECT_EQ(ids("?limit=2&before=" + std::to_string(b)), (std::vector<std::int64_t>{a}));

  auto page = body(call("GET", "/api/runs?limit=2", ""));
  EXPECT_EQ(page["next_before"], b);
  EXPECT_FALSE(body(call("GET", "/api/runs?limit=5", "")).contains("next_before"));
  auto first = body(call("GET", "/api/runs?limit=1", ""))["runs"][0];
  EXPECT_EQ(first["repository"], "acme/lib");
  EXPECT_EQ(first["state"], "queued");
  EXPECT_EQ(first["trigger"], "webhook");

  for (const std::string& bad : std::vector<std::string>{"?state=done", "?limit=0", "?limit=501", "?limit=x", "?before=-1", "?colour=red",
                                "?repository=%zz"})
    EXPECT_EQ(call("GET", "/api/runs" + bad, "").status, 400) << bad;
}

TEST_F(AdminRoutesTest, ActionsOfAnUnknownRunIs404) {
  EXPECT_EQ(call("GET", "/api/runs/77/actions", "").status, 404);
}

}  // namespace
}  // namespace sandci::agent::server
