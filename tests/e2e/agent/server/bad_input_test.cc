// Bad input sent to the real daemon (`sandci serve`) over HTTP on 127.0.0.1: webhook
// bodies that are malformed, truncated, oversized, mis-signed or replayed, for every
// forge, bytes on the socket that are not HTTP at all, and workflow files that do not
// load. Each gets a clear 4xx answer (or, for a broken workflow, a failed status naming
// file:line:col); nothing starts; the agent stays up and still runs a good push.
//
// ServeTest.BadDeliveriesGetClearAnswersAndStartNothing covers GitHub's basic cases
// (wrong secret, unsigned, unknown repository, not JSON, a bad sha, ping, ignored
// events, 26 MiB, one replay); this file covers the other forges, the body changed
// after signing, truncation, nesting, form bodies, GitLab's signing token and its
// replay window, raw socket garbage, and workflow files that do not load.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <regex>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

const char* kQuick = R"(name: quick
on: [push, pull_request]
jobs:
  hello:
    runs-on: linux
    steps:
      - run: echo quick-ran
)";

// Four repositories, one per forge, all serving kQuick.
class BadInputTest : public AgentTest {
 protected:
  void start_four_forges(TestForge& forge) {
    for (const char* name : {"alice/hello", "alice/tea", "alice/jo", "alice/lab"})
      shas_.push_back(make_repo(name, {{".github/workflows/quick.yml", kQuick}}));
    write_config(forge, {{"alice/hello", "github", ""},
                         {"alice/tea", "gitea", ""},
                         {"alice/jo", "forgejo", ""},
                         {"alice/lab", "gitlab", ""}});
    start_agent();
  }

  // A push body as each forge words it.
  std::string push_body(ForgeKind kind, const std::string& repo, const std::string& sha) {
    if (kind != ForgeKind::gitlab) return github_push(repo, clone_url(repo), sha);
    return json{{"object_kind", "push"},
                {"event_name", "push"},
                {"before", std::string(40, '0')},
                {"after", sha},
                {"ref", "refs/heads/main"},
                {"checkout_sha", sha},
                {"user_username", "alice"},
                {"project_id", 42},
                {"project",
                 {{"id", 42}, {"path_with_namespace", repo}, {"git_http_url", clone_url(repo)}, {"default_branch", "main"}}},
                {"commits", json::array({{{"id", sha}, {"message", "lab commit\n"}}})},
                {"total_commits_count", 1}}
        .dump();
  }

  // POSTs body with exactly `headers` (nothing signed unless they say so).
  http::ClientResponse post_raw(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
                                const std::string& path = "/webhook", const std::string& content_type = "application/json") {
    http::ClientRequest request;
    request.method = "POST";
    request.url = agent_url() + path;
    request.body = body;
    request.timeout = 15s;
    if (!content_type.empty()) request.headers.set("Content-Type", content_type);
    for (const auto& [name, value] : headers) request.headers.add(name, value);
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }

  // The headers `kind` sends for `signed_body`, then `body` sent with them.
  http::ClientResponse deliver_signed_for(ForgeKind kind, const std::string& event, const std::string& delivery,
                                          const std::string& signed_body, const std::string& body,
                                          bool gitlab_signed = false,
                                          std::chrono::system_clock::time_point when = std::chrono::system_clock::now()) {
    return post_raw(forge::webhook_headers(kind, event, delivery, signed_body, kWebhookSecret, when, gitlab_signed), body);
  }

  std::size_t run_count() {
    auto runs = json::parse(get("/api/runs?limit=500").body, nullptr, false);
    return runs.is_object() && runs.contains("runs") ? runs["runs"].size() : 9999;
  }

  bool nothing_queued_or_running() {
    auto health = json::parse(get("/healthz").body, nullptr, false);
    return health.is_object() && health.value("queued", -1) == 0 && health.value("running", -1) == 0;
  }

  // Sends bytes on a fresh connection and reads the answer until the agent closes
  // the connection or 10 s pass. "" when it closed without a word.
  std::string raw_exchange(const std::string& bytes, bool half_close = true) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      timeval timeout{10, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
      std::size_t sent = 0;
      while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the agent may answer and close before reading it all
        sent += static_cast<std::size_t>(n);
      }
      if (half_close) ::shutdown(fd, SHUT_WR);
      char buffer[4096];
      for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
      }
    }
    ::close(fd);
    return answer;
  }

  static int status_of(const std::string& raw_answer) {
    if (!raw_answer.starts_with("HTTP/1.1 ") || raw_answer.size() < 12) return 0;
    return std::atoi(raw_answer.substr(9, 3).c_str());
  }

  // A good push to alice/hello still runs to success.
  void expect_a_good_push_runs(const std::string& delivery) {
    auto accepted = deliver(ForgeKind::github, "push", delivery, push_body(ForgeKind::github, "alice/hello", shas_[0]));
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    const auto run = run_id_of(accepted);
    ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
    EXPECT_EQ(run_state(run), "success");
  }

  std::vector<std::string> shas_;
};

struct BadCase {
  std::string what;
  http::ClientResponse response;
  int expected;
  std::string says;  // a fragment the answer must contain ("" for any)
};

TEST_F(BadInputTest, MalformedTruncatedAndMisSignedDeliveriesOfEveryForgeGetA4xxAndStartNothing) {
  TestForge forge;
  start_four_forges(forge);
  const std::string hub = push_body(ForgeKind::github, "alice/hello", shas_[0]);
  const std::string tea = push_body(ForgeKind::gitea, "alice/tea", shas_[1]);
  const std::string jo = push_body(ForgeKind::forgejo, "alice/jo", shas_[2]);
  const std::string lab = push_body(ForgeKind::gitlab, "alice/lab", shas_[3]);
  auto flipped = [](std::string body) {
    body[body.find("refs/heads/main") + 11] = 'X';  // refs/heads/mXin: another branch
    return body;
  };
  auto with = [](const std::string& body, const std::string& key, const json& value) {
    auto j = json::parse(body);
    j[key] = value;
    return j.dump();
  };
  auto gitlab_headers = [&](const std::string& id, const std::string& timestamp, const std::string& signature) {
    return std::vector<std::pair<std::string, std::string>>{
        {"X-Gitlab-Event", "Push Hook"}, {"webhook-id", id}, {"webhook-timestamp", timestamp}, {"webhook-signature", signature}};
  };
  const std::string now_seconds = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::string nested = R"({"repository":{"full_name":"alice/hello"},"ref":)";
  nested += std::string(5000, '[') + std::string(5000, ']') + "}";

  std::vector<BadCase> cases;
  auto add = [&](std::string what, http::ClientResponse r, int expected, std::string says = "") {
    cases.push_back({std::move(what), std::move(r), expected, std::move(says)});
  };
  // Mis-signed: the body changed after signing, for each forge.
  add("github body changed after signing", deliver_signed_for(ForgeKind::github, "push", "m-1", hub, flipped(hub)), 401,
      "does not match");
  add("gitea body changed after signing", deliver_signed_for(ForgeKind::gitea, "push", "m-2", tea, flipped(tea)), 401,
      "does not match");
  add("forgejo body changed after signing", deliver_signed_for(ForgeKind::forgejo, "push", "m-3", jo, flipped(jo)), 401,
      "does not match");
  add("gitlab signed body changed after signing",
      deliver_signed_for(ForgeKind::gitlab, "Push Hook", "m-4", lab, flipped(lab), true), 401, "does not match");
  add("gitlab wrong token", post_raw({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "guess"}}, lab), 401);
  add("gitlab no token at all", post_raw({{"X-Gitlab-Event", "Push Hook"}}, lab), 401, "X-Gitlab-Token");
  add("gitlab signature an hour old (replay window)",
      deliver_signed_for(ForgeKind::gitlab, "Push Hook", "m-5", lab, lab, true,
                         std::chrono::system_clock::now() - std::chrono::hours(1)),
      401, "old");
  add("gitlab signature not base64", post_raw(gitlab_headers("m-6", now_seconds, "v1,@@@not-base64@@@"), lab), 401);
  add("gitlab signature of another scheme", post_raw(gitlab_headers("m-7", now_seconds, "v2,abcd"), lab), 401, "no v1");
  add("gitlab timestamp not a number", post_raw(gitlab_headers("m-8", "yesterday", "v1,AAAA"), lab), 401, "Unix time");
  add("gitea signature not hex", post_raw({{"X-Gitea-Event", "push"}, {"X-Gitea-Delivery", "m-9"},
                                           {"X-Gitea-Signature", std::string(64, 'z')}}, tea), 401, "hex");
  add("github sha1 signature only", post_raw({{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "m-10"},
                                              {"X-Hub-Signature", "sha1=" + std::string(40, 'a')}}, hub), 401);
  add("github signature for another repository's secret",
      post_raw(forge::webhook_headers(ForgeKind::github, "push", "m-11", hub, "webhook-secret-6d1f0b",
                                      std::chrono::system_clock::now()), hub), 401);
  // Malformed or truncated, correctly signed: the signature is fine, the body is not.
  add("github truncated JSON", deliver(ForgeKind::github, "push", "t-1", hub.substr(0, hub.size() / 2)), 400);
  add("gitea truncated JSON", deliver(ForgeKind::gitea, "push", "t-2", tea.substr(0, tea.size() - 1)), 400);
  add("gitlab truncated JSON", deliver(ForgeKind::gitlab, "Push Hook", "t-3", lab.substr(0, 40)), 400);
  add("forgejo empty body", deliver(ForgeKind::forgejo, "push", "t-4", ""), 400);
  add("github JSON nested 5000 deep", deliver(ForgeKind::github, "push", "t-5", nested), 400);
  add("github ref of the wrong type", deliver(ForgeKind::github, "push", "t-6", with(hub, "ref", 17)), 400, "ref");
  add("gitea sha too short", deliver(ForgeKind::gitea, "push", "t-7", with(tea, "after", shas_[1].substr(0, 39))), 400);
  add("gitlab project without path",
      deliver(ForgeKind::gitlab, "Push Hook", "t-8", with(lab, "project", json{{"id", 42}})), 400,
      "path_with_namespace");
  add("github pull request number 0",
      deliver(ForgeKind::github, "pull_request", "t-9",
              json{{"action", "opened"}, {"number", 0},
                   {"pull_request", {{"number", 0}, {"head", {{"sha", shas_[0]}, {"ref", "x"}}}, {"base", {{"ref", "main"}}}}},
                   {"repository", {{"full_name", "alice/hello"}, {"clone_url", clone_url("alice/hello")}}}}
                  .dump()),
      400);
  add("github JSON with a NUL byte inside a string",
      deliver(ForgeKind::github, "push", "t-10", std::string(R"({"ref":"refs/heads/ma)") + '\0' + "in\"}"), 400);
  add("github invalid UTF-8 in a string",
      deliver(ForgeKind::github, "push", "t-11", std::string(R"({"repository":{"full_name":"alice/h)") + "\xc3\x28" + "\"}}"),
      400);
  {
    // A form delivery whose payload escape is cut: the signature covers these bytes.
    const std::string form = "payload=%7B%22ref%22%3A%2";
    auto headers = forge::webhook_headers(ForgeKind::github, "push", "t-12", form, kWebhookSecret, std::chrono::system_clock::now());
    add("github form payload with a cut escape", post_raw(headers, form, "/webhook", "application/x-www-form-urlencoded"), 400,
        "URL-encoded");
  }
  add("form body without payload", post_raw({{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "t-13"}}, "a=1&b=2",
                                            "/webhook", "application/x-www-form-urlencoded"), 400, "payload");
  add("no delivery id", post_raw({{"X-Gitea-Event", "push"}}, tea), 400, "delivery");
  add("no event header", post_raw({{"X-Hub-Signature-256", "sha256=00"}}, hub), 400, "no event header");
  add("unknown forge in the path", post_raw({}, hub, "/webhook/bitbucket"), 404, "no such forge");
  // Oversized: over the agent's body limit (25 MiB by default), sent in full.
  {
    http::ClientRequest huge;
    huge.method = "POST";
    huge.url = agent_url() + "/webhook";
    huge.body = "{\"repository\":{\"full_name\":\"alice/lab\"},\"x\":\"" + std::string(30u << 20, 'a') + "\"}";
    huge.headers.set("X-Gitlab-Event", "Push Hook");
    huge.headers.set("X-Gitlab-Token", kWebhookSecret);
    huge.timeout = 60s;
    auto r = client_.send(huge);
    // The agent answers 413 while the upload goes on and closes; the client may see
    // the answer or only the closed connection.
    if (r) add("gitlab body of 30 MiB", *r, 413);
  }

  for (const auto& c : cases) {
    EXPECT_EQ(c.response.status, c.expected) << c.what << ": " << c.response.body;
    EXPECT_GE(c.response.status, 400) << c.what;
    EXPECT_LT(c.response.status, 500) << c.what << ": bad input never gets a 5xx";
    if (!c.says.empty()) {
      EXPECT_NE(c.response.body.find(c.says), std::string::npos) << c.what << ": " << c.response.body;
    }
  }
  // Nothing started, nothing was recorded as a run; the agent is up and still works.
  EXPECT_TRUE(nothing_queued_or_running());
  EXPECT_EQ(run_count(), 0u);
  EXPECT_TRUE(forge.requests().empty()) << "a status was sent for a refused delivery";
  expect_a_good_push_runs("good-1");
  EXPECT_EQ(run_count(), 1u);
}

TEST_F(BadInputTest, ReplayedDeliveriesOfEveryForgeStartOneRunEach) {
  TestForge forge;
  start_four_forges(forge);
  struct Sent {
    ForgeKind kind;
    std::string repo, event, delivery;
    bool gitlab_signed;
  };
  const std::vector<Sent> sent = {{ForgeKind::github, "alice/hello", "push", "r-hub", false},
                                  {ForgeKind::gitea, "alice/tea", "push", "r-tea", false},
                                  {ForgeKind::forgejo, "alice/jo", "push", "r-jo", false},
                                  {ForgeKind::gitlab, "alice/lab", "Push Hook", "r-lab", true}};
  std::vector<std::int64_t> runs;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto& s = sent[i];
    const std::string body = push_body(s.kind, s.repo, shas_[i]);
    auto first = deliver(s.kind, s.event, s.delivery, body, kWebhookSecret, s.gitlab_signed);
    ASSERT_EQ(first.status, 202) << s.repo << ": " << first.body;
    runs.push_back(run_id_of(first));
    // The same bytes again, and the same delivery id with another (validly signed)
    // body: a forge's redelivery, and an attacker replaying an id. Neither starts a run.
    auto again = deliver(s.kind, s.event, s.delivery, body, kWebhookSecret, s.gitlab_signed);
    EXPECT_EQ(again.status, 200) << s.repo << ": " << again.body;
    EXPECT_NE(again.body.find("duplicate"), std::string::npos) << again.body;
    auto changed = json::parse(body);
    changed["ref"] = "refs/heads/other";
    auto other = deliver(s.kind, s.event, s.delivery, changed.dump(), kWebhookSecret, s.gitlab_signed);
    EXPECT_EQ(other.status, 200) << s.repo << ": " << other.body;
    EXPECT_NE(other.body.find("duplicate"), std::string::npos) << other.body;
  }
  // An old GitLab sends no delivery id header at all: its body's digest is the id.
  const std::string old_lab = push_body(ForgeKind::gitlab, "alice/lab", shas_[3]);
  auto no_id = [&] {
    return post_raw({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kWebhookSecret}}, old_lab);
  };
  auto first_old = no_id();
  ASSERT_EQ(first_old.status, 202) << first_old.body;
  runs.push_back(run_id_of(first_old));
  auto replay_old = no_id();
  EXPECT_EQ(replay_old.status, 200) << replay_old.body;
  EXPECT_NE(replay_old.body.find("duplicate"), std::string::npos) << replay_old.body;

  for (auto run : runs) ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  // The id-less GitLab push is a newer push of alice/lab's main: it may supersede (cancel) the first.
  for (auto run : runs) {
    const std::string state = run_state(run);
    EXPECT_TRUE(state == "success" || (run == runs[3] && state == "cancelled")) << "run " << run << ": " << state;
  }
  EXPECT_EQ(run_count(), runs.size()) << "a replay started a run";
}

TEST_F(BadInputTest, BytesThatAreNotHttpLeaveTheAgentServing) {
  TestForge forge;
  start_four_forges(forge);
  const std::string hub = push_body(ForgeKind::github, "alice/hello", shas_[0]);
  struct Raw {
    std::string what, bytes;
    int expected;  // 0: any 4xx or a closed connection
  };
  const std::vector<Raw> raws = {
      {"binary garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(200, '\xff'), 0},
      {"a request line without a version", "POST /webhook\r\n\r\n", 0},
      {"a NUL in the request line", std::string("POST /web\0hook HTTP/1.1\r\nHost: x\r\n\r\n", 36), 0},
      // 431, or only a closed connection when the agent answers while it is still sent.
      {"a header of 1 MiB", "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: " + std::string(1 << 20, 'p') + "\r\n\r\n", 431},
      {"a header line without a colon", "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event push\r\n\r\n", 0},
      {"a negative Content-Length", "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 0},
      {"two Content-Lengths that disagree",
       "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 0},
      {"a Content-Length of 2^64", "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", 0},
      {"a broken chunked body", "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 0},
      {"a body shorter than its Content-Length, then the connection closes",
       "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: raw-1\r\nContent-Length: 1000\r\n\r\n" +
           hub.substr(0, 100),
       0},
  };
  for (const auto& raw : raws) {
    const std::string answer = raw_exchange(raw.bytes);
    const int status = status_of(answer);
    if (raw.expected != 0 && !answer.empty()) {
      EXPECT_EQ(status, raw.expected) << raw.what << ": " << answer.substr(0, 200);
    } else {
      EXPECT_TRUE(answer.empty() || (status >= 400 && status < 500)) << raw.what << ": " << answer.substr(0, 200);
    }
    EXPECT_EQ(get("/healthz").status, 200) << "the agent is down after " << raw.what;
  }
  EXPECT_TRUE(nothing_queued_or_running());
  EXPECT_EQ(run_count(), 0u);
  expect_a_good_push_runs("good-raw");
}

// Workflow files that do not load: the run fails at once with a status naming
// file:line:col, no job starts; a push that fixes the file runs.
TEST_F(BadInputTest, ABrokenWorkflowPushedFailsNamingFileLineAndColumn) {
  TestForge forge;
  const char* bad_yaml = "name: ci\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: make\n     - run: make check\n";
  const char* bad_keys = R"(name: lint
on: push
jobs:
  lint:
    runs-on: linux
    needs: [nowhere]
    steps:
      - run: echo ${{ github.sha
)";
  const std::string sha =
      make_repo("alice/hello", {{".github/workflows/ci.yml", bad_yaml}, {".github/workflows/lint.yml", bad_keys}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "w-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "failure");
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));

  // Each broken file's status says where it is broken, file:line:col.
  const auto seen = seen_statuses(forge.delivered());
  auto description_naming = [&](const std::string& file) {
    for (const auto& s : seen)
      if (s.state == "failure" && s.description.find(file) != std::string::npos) return s.description;
    return std::string();
  };
  const std::string ci = description_naming(".github/workflows/ci.yml:");
  const std::string lint = description_naming(".github/workflows/lint.yml:");
  EXPECT_TRUE(std::regex_search(ci, std::regex(R"(ci\.yml:\d+:\d+)"))) << ci;
  (void)lint;  // the run's message names every broken file (below)
  for (const auto& s : seen) {
    EXPECT_NE(s.state, "success") << s.context << ": nothing of a broken workflow succeeds";
    EXPECT_EQ(s.context.find("/build"), std::string::npos) << "a job of the broken workflow started: " << s.context;
  }
  auto api = json::parse(get("/api/runs/" + std::to_string(run)).body, nullptr, false);
  ASSERT_TRUE(api.is_object());
  EXPECT_TRUE(std::regex_search(api.dump(), std::regex(R"(ci\.yml:8:\d+)"))) << api.dump();
  EXPECT_TRUE(std::regex_search(api.dump(), std::regex(R"(lint\.yml:\d+:\d+)"))) << api.dump();

  // The agent stays up; the fixed files run.
  std::string lint_fixed = kQuick;
  lint_fixed.replace(lint_fixed.find("name: quick"), 11, "name: lint");
  const std::string fixed =
      repo().commit({{".github/workflows/ci.yml", kQuick}, {".github/workflows/lint.yml", lint_fixed}}, "fix the workflows");
  repo().push("HEAD:refs/heads/main");
  auto again = deliver(ForgeKind::github, "push", "w-2", github_push("alice/hello", clone_url("alice/hello"), fixed));
  ASSERT_EQ(again.status, 202) << again.body;
  const auto good = run_id_of(again);
  ASSERT_TRUE(eventually([&] { return run_finished(good); })) << slurp(log_file());
  EXPECT_EQ(run_state(good), "success");
  // The sandbox started during the checkout fits a run of two workflows too
  // (their one event file): a job took it.
  EXPECT_NE(slurp(log_file()).find("event=first_sandbox run=" + std::to_string(good) + " taken=true"),
            std::string::npos)
      << slurp(log_file());
}

}  // namespace
}  // namespace sandci::agent::testing
