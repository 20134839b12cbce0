// WebhookIntake over a real SQLite store in a temp dir: what each delivery is
// answered, and what it leaves in the store. No network: requests are built here.
#include "agent/server/webhook_intake.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>

#include <nlohmann/json.hpp>

#include "agent/config/config_loader.h"
#include "agent/forge/signing.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;
using nlohmann::json;

const std::string kSha = "0123456789abcdef0123456789abcdef01234567";
const std::int64_t kNow = 1'700'000'000'000;

class IntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"webhook", "token"}) {
      std::ofstream(dir_ / name) << (std::string(name) == "webhook" ? "s3cret-hook" : "tok") << "\n";
      fs::permissions(dir_ / name, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    }
    std::ofstream(dir_ / "agent.yml") << "public_url: http://127.0.0.1:9\nstate_dir: " << dir_.string()
                                      << "\nrepositories:\n"
                                         "  - name: alice/hello\n    forge: github\n"
                                         "    webhook_secret: {file: webhook}\n    api_token: {file: token}\n"
                                         "  - name: team/app\n    forge: forgejo\n    api_url: http://127.0.0.1:9/api/v1\n"
                                         "    webhook_secret: {file: webhook}\n    api_token: {file: token}\n"
                                         "    events: [push]\n";
    auto loaded = config::load_agent_config(dir_ / "agent.yml", {});
    ASSERT_TRUE(loaded.ok()) << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].to_string());
    config_ = *loaded.config;
    auto store = store::open_sqlite_store(dir_ / "agent.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    intake_ = std::make_unique<WebhookIntake>(config_, *store_, [] { return kNow; },
                                              [this](std::int64_t id, const std::vector<std::int64_t>& older) {
                                                queued_.push_back(id);
                                                superseded_.insert(superseded_.end(), older.begin(), older.end());
                                              });
  }
  void TearDown() override {
    intake_.reset();
    store_.reset();
  }

  http::HttpResponse deliver(forge::ForgeKind kind, const std::string& event, const std::string& delivery,
                             const std::string& body, const std::string& secret = "s3cret-hook",
                             const std::string& path_forge = "") {
    return intake_->handle(request(kind, event, delivery, body, secret), path_forge);
  }

  static http::HttpRequest request(forge::ForgeKind kind, const std::string& event, const std::string& delivery,
                                   const std::string& body, const std::string& secret = "s3cret-hook") {
    http::HttpRequest request;
    request.method = "POST";
    request.target = "/webhook";
    request.body = body;
    request.headers.set("Content-Type", "application/json");
    for (const auto& [k, v] : forge::webhook_headers(kind, event, delivery, body, secret,
                                                     std::chrono::system_clock::time_point(std::chrono::milliseconds(kNow))))
      request.headers.add(k, v);
    return request;
  }

  // Rows of `delivery` in the file, read by a connection of its own (as after a crash).
  std::int64_t stored(const std::string& delivery) const {
    sqlite3* db = nullptr;
    std::int64_t count = -1;
    if (sqlite3_open_v2((dir_ / "agent.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      const std::string sql = "SELECT COUNT(*) FROM deliveries WHERE delivery_id = '" + delivery + "'";
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        count = sqlite3_column_int64(stmt, 0);
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return count;
  }

  // handle_async(): the one answer, and whether the delivery was on disk when it came.
  struct AsyncAnswer {
    http::HttpResponse response;
    std::int64_t stored_when_answered = -1;
    int answers = 0;
  };
  AsyncAnswer deliver_async(const http::HttpRequest& request, const std::string& delivery) {
    auto answers = std::make_shared<std::atomic<int>>(0);
    std::promise<AsyncAnswer> promise;
    auto future = promise.get_future();
    intake_->handle_async(request, "", [&, answers, delivery](http::HttpResponse response) {
      if (answers->fetch_add(1) > 0) return;  // a second answer shows in the count
      promise.set_value(AsyncAnswer{std::move(response), stored(delivery), 0});
    });
    AsyncAnswer answer = future.get();
    intake_.reset();  // waits for every answer still owed
    answer.answers = answers->load();
    return answer;
  }

  static std::string push(const std::string& repo, const std::string& ref = "refs/heads/main",
                          const std::string& after = kSha) {
    return json{{"ref", ref},
                {"before", std::string(40, '0')},
                {"after", after},
                {"repository", {{"full_name", repo}, {"clone_url", "git://127.0.0.1/" + repo}}},
                {"head_commit", {{"id", after}, {"message", "first line\nsecond"}}}}
        .dump();
  }

  TempDir temp_{"sandci-intake-"};
  fs::path dir_ = temp_.path();
  config::AgentConfig config_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<WebhookIntake> intake_;
  std::vector<std::int64_t> queued_, superseded_;
};

TEST_F(IntakeTest, SignedPushQueuesOneRunWithItsPayload) {
  auto r = deliver(forge::ForgeKind::github, "push", "d1", push("alice/hello"));
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_EQ(queued_.size(), 1u);
  auto run = store_->get_run(queued_[0]);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->repository, "alice/hello");
  EXPECT_EQ((*run)->sha, kSha);
  EXPECT_EQ((*run)->ref, "refs/heads/main");
  EXPECT_EQ((*run)->event, "push");
  EXPECT_EQ((*run)->title, "first line");
  EXPECT_EQ((*run)->delivery_id, "d1");
  EXPECT_EQ(json::parse((*run)->payload_json)["after"], kSha);
  EXPECT_NE(r.body.find("http://127.0.0.1:9/runs/" + std::to_string(queued_[0])), std::string::npos);
}

TEST_F(IntakeTest, ReplayedDeliveryStartsNothing) {
  ASSERT_EQ(deliver(forge::ForgeKind::github, "push", "d1", push("alice/hello")).status, 202);
  auto replay = deliver(forge::ForgeKind::github, "push", "d1", push("alice/hello"));
  EXPECT_EQ(replay.status, 200);
  EXPECT_NE(replay.body.find("duplicate"), std::string::npos);
  EXPECT_EQ(queued_.size(), 1u);
  EXPECT_EQ(store_->count_runs(store::RunState::queued).value(), 1);
}

TEST_F(IntakeTest, SignatureAndRepositoryFailuresAre401) {
  EXPECT_EQ(deliver(forge::ForgeKind::github, "push", "d1", push("alice/hello"), "wrong").status, 401);
  auto unknown = deliver(forge::ForgeKind::github, "push", "d2", push("mallory/evil"));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.body.find("mallory"), std::string::npos) << "an unknown repository is not confirmed";
  // A repository configured on Forgejo is not served to GitHub's deliveries.
  EXPECT_EQ(deliver(forge::ForgeKind::github, "push", "d3", push("team/app")).status, 401);
  EXPECT_TRUE(queued_.empty());
}

TEST_F(IntakeTest, MalformedBodiesAre400NeverAServerError) {
  for (const std::string body : {"", "{", "[]", "null", R"({"repository": 5})", "\xff\xfe"}) {
    auto r = deliver(forge::ForgeKind::github, "push", "m", body);
    EXPECT_GE(r.status, 400) << body;
    EXPECT_LT(r.status, 500) << body;
  }
  auto bad_sha = deliver(forge::ForgeKind::github, "push", "m2", push("alice/hello", "refs/heads/main", "nothex"));
  EXPECT_EQ(bad_sha.status, 400);
  EXPECT_TRUE(queued_.empty());
}

TEST_F(IntakeTest, IgnoredEventsAreRecordedAndSaySo) {
  auto deleted = deliver(forge::ForgeKind::github, "push", "i1",
                         push("alice/hello", "refs/heads/gone", std::string(40, '0')));
  EXPECT_EQ(deleted.status, 200);
  EXPECT_NE(deleted.body.find("ignored: "), std::string::npos) << deleted.body;
  // Forgejo's repository runs pushes only: its pull requests are not configured.
  auto pr = json{{"action", "opened"},
                 {"number", 3},
                 {"pull_request", {{"number", 3}, {"head", {{"sha", kSha}, {"ref", "f"}, {"repo", {{"full_name", "team/app"}}}}},
                                   {"base", {{"ref", "main"}, {"repo", {{"full_name", "team/app"}}}}}}},
                 {"repository", {{"full_name", "team/app"}, {"clone_url", "git://127.0.0.1/team/app"}}}};
  auto not_configured = deliver(forge::ForgeKind::forgejo, "pull_request", "i2", pr.dump());
  EXPECT_EQ(not_configured.status, 200);
  EXPECT_NE(not_configured.body.find("pull_request events are not configured"), std::string::npos)
      << not_configured.body;
  // Their delivery ids are remembered too: a replay of an ignored one is a duplicate.
  EXPECT_NE(deliver(forge::ForgeKind::forgejo, "pull_request", "i2", pr.dump()).body.find("duplicate"),
            std::string::npos);
  EXPECT_TRUE(queued_.empty());
}

// One pull request delivery queues two runs in one transaction: its pull_request
// workflows from the head (a fork's, without secrets) and its pull_request_target
// workflows from the base repository's base branch (with secrets, as on GitHub).
TEST_F(IntakeTest, PullRequestQueuesAHeadRunAndABaseTargetRun) {
  auto pr = json{{"action", "synchronize"},
                 {"number", 7},
                 {"pull_request",
                  {{"number", 7},
                   {"head", {{"sha", kSha}, {"ref", "fix"}, {"repo", {{"full_name", "mallory/hello"},
                                                                       {"clone_url", "git://127.0.0.1/mallory/hello"}}}}},
                   {"base", {{"ref", "main"}, {"sha", std::string(40, 'b')}, {"repo", {{"full_name", "alice/hello"}}}}}}},
                 {"repository", {{"full_name", "alice/hello"}, {"clone_url", "git://127.0.0.1/alice/hello"}}}};
  auto r = deliver(forge::ForgeKind::github, "pull_request", "pr-7", pr.dump());
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_EQ(queued_.size(), 2u);
  EXPECT_EQ(json::parse(r.body)["runs"], json(queued_));
  auto head = store_->get_run(queued_[0]).value().value();
  EXPECT_EQ(head.event, "pull_request");
  EXPECT_EQ(head.sha, kSha);
  EXPECT_EQ(head.ref, "refs/pull/7/head");
  EXPECT_TRUE(head.from_fork);
  EXPECT_EQ(head.clone_url, "git://127.0.0.1/mallory/hello");
  auto target = store_->get_run(queued_[1]).value().value();
  EXPECT_EQ(target.event, "pull_request_target");
  EXPECT_EQ(target.ref, "refs/heads/main");
  EXPECT_EQ(target.sha, "") << "the base branch's HEAD is taken when the run starts";
  EXPECT_EQ(target.action, "synchronize");
  EXPECT_EQ(target.base_ref, "main");
  EXPECT_EQ(target.head_ref, "fix");
  EXPECT_FALSE(target.from_fork);
  EXPECT_EQ(target.clone_url, "git://127.0.0.1/alice/hello");
  EXPECT_EQ(json::parse(target.payload_json)["pull_request"]["head"]["sha"], kSha);
  // A replay queues neither again.
  EXPECT_NE(deliver(forge::ForgeKind::github, "pull_request", "pr-7", pr.dump()).body.find("duplicate"),
            std::string::npos);
  EXPECT_EQ(store_->count_runs(store::RunState::queued).value(), 2);
  // The next push to the pull request supersedes both, each by its own kind.
  pr["action"] = "synchronize";
  ASSERT_EQ(deliver(forge::ForgeKind::github, "pull_request", "pr-7b", pr.dump()).status, 202);
  EXPECT_EQ(store_->get_run(queued_[0]).value()->state, store::RunState::cancelled);
  EXPECT_EQ(store_->get_run(queued_[1]).value()->state, store::RunState::cancelled);
  EXPECT_EQ(store_->count_runs(store::RunState::queued).value(), 2);
}

TEST_F(IntakeTest, NewerPushSupersedesTheQueuedOne) {
  ASSERT_EQ(deliver(forge::ForgeKind::github, "push", "p1", push("alice/hello")).status, 202);
  ASSERT_EQ(deliver(forge::ForgeKind::github, "push", "p2", push("alice/hello")).status, 202);
  ASSERT_EQ(queued_.size(), 2u);
  auto older = store_->get_run(queued_[0]);
  ASSERT_TRUE(older && *older);
  EXPECT_EQ((*older)->state, store::RunState::cancelled);
  EXPECT_NE((*older)->message.find("superseded by run " + std::to_string(queued_[1])), std::string::npos);
  // Another branch is not touched.
  ASSERT_EQ(deliver(forge::ForgeKind::github, "push", "p3", push("alice/hello", "refs/heads/dev")).status, 202);
  EXPECT_EQ(store_->get_run(queued_[1]).value()->state, store::RunState::queued);
}

TEST_F(IntakeTest, ForgeFromThePathAndOtherMethods) {
  http::HttpRequest get;
  get.method = "GET";
  EXPECT_EQ(intake_->handle(get, "").status, 405);
  EXPECT_EQ(deliver(forge::ForgeKind::github, "push", "f1", push("alice/hello"), "s3cret-hook", "nosuchforge").status,
            404);
  EXPECT_EQ(deliver(forge::ForgeKind::github, "push", "f2", push("alice/hello"), "s3cret-hook", "github").status, 202);
  http::HttpRequest no_headers;
  no_headers.method = "POST";
  no_headers.body = push("alice/hello");
  auto unknown_forge = intake_->handle(no_headers, "");
  EXPECT_EQ(unknown_forge.status, 400);
  EXPECT_NE(unknown_forge.body.find("no event header"), std::string::npos);
}

// handle_async(): an ignored delivery is answered once, from the store's writer
// thread, and only when it is on disk; one that starts a run as handle() answers it.
TEST_F(IntakeTest, AsyncAnswersOnceAndOnlyAfterTheDeliveryIsCommitted) {
  auto ignored = deliver_async(
      request(forge::ForgeKind::github, "push", "a1", push("alice/hello", "refs/heads/gone", std::string(40, '0'))),
      "a1");
  EXPECT_EQ(ignored.response.status, 200);
  EXPECT_EQ(ignored.response.body.rfind("ignored: ", 0), 0u) << ignored.response.body;
  EXPECT_EQ(ignored.stored_when_answered, 1);
  EXPECT_EQ(ignored.answers, 1);
}

TEST_F(IntakeTest, AsyncQueuesARunAndRefusesABadSignatureAsHandleDoes) {
  auto queued = deliver_async(request(forge::ForgeKind::github, "push", "a2", push("alice/hello")), "a2");
  EXPECT_EQ(queued.response.status, 202) << queued.response.body;
  EXPECT_EQ(queued.stored_when_answered, 1);
  EXPECT_EQ(queued.answers, 1);
  EXPECT_EQ(queued_.size(), 1u);
  SetUp();  // a fresh intake (deliver_async let go of the last one)
  auto forged = deliver_async(request(forge::ForgeKind::github, "push", "a3", push("alice/hello"), "wrong"), "a3");
  EXPECT_EQ(forged.response.status, 401);
  EXPECT_EQ(forged.stored_when_answered, 0);
  EXPECT_EQ(forged.answers, 1);
}

}  // namespace
}  // namespace sandci::agent::server
