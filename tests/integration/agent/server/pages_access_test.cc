// Who sees the run pages, over real HTTP against the real daemon: a private
// repository's run, logs and JSON answer 404 without a token and 200 with a viewer
// token (bearer or the login cookie); a public repository's are open to all. The run
// page's admin forms need the admin session and its CSRF token; the bearer admin API
// needs no CSRF token. The run page draws one edge per `needs`. A login outlives
// restarts (the key is in <state_dir>/session.key) until the key file is deleted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>

#include "agent/server/routes.h"
#include "integration/agent/server/admin_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

constexpr const char* kViewerToken = "viewer-token-alice-2c71";
constexpr const char* kGlobalToken = "viewer-token-global-9a04";

const char* kOneJob = "on: push\njobs:\n  hello:\n    runs-on: linux\n    steps:\n      - run: echo hello-public\n";

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class PagesAccessTest : public AdminTest {
 protected:
  // GET with extra headers (Authorization, Cookie...).
  http::ClientResponse get_with(const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers) {
    http::ClientRequest request;
    request.url = agent_url() + path;
    request.timeout = 10s;
    for (const auto& [name, value] : headers) request.headers.set(name, value);
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }
  http::ClientResponse get_bearer(const std::string& path, const std::string& token) {
    return get_with(path, {{"Authorization", "Bearer " + token}});
  }
  http::ClientResponse post_form(const std::string& path, const std::string& body,
                                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::ClientRequest request;
    request.method = "POST";
    request.url = agent_url() + path;
    request.body = body;
    request.timeout = 10s;
    request.headers.set("Content-Type", "application/x-www-form-urlencoded");
    for (const auto& [name, value] : headers) request.headers.set(name, value);
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }
  // Logs in with `token` through the form; the cookie ("name=value") or empty.
  std::string login(const std::string& token, const std::string& next = "/runs") {
    auto answer = post_form("/login", "token=" + agent::server::percent_encode(token) + "&next=" + agent::server::percent_encode(next));
    if (answer.status != 303) return "";
    const std::string set = answer.headers.get("Set-Cookie").value_or("");
    return set.substr(0, set.find(';'));
  }
  std::string state_as_admin(std::int64_t id) {
    auto run = json::parse(get_bearer("/api/runs/" + std::to_string(id), kAdminToken).body, nullptr, false);
    return run.is_object() ? run.value("state", "") : "";
  }
  bool finished_as_admin(std::int64_t id) {
    const std::string s = state_as_admin(id);
    return s == "success" || s == "failure" || s == "error" || s == "cancelled";
  }
  std::string private_repo_extra() const {
    return "    pages: private\n    viewer_tokens: [{file: " + (dir_.path() / "secrets/viewer").string() + "}]\n";
  }
  void write_viewer_secrets() {
    write_secret(dir_.path() / "secrets/viewer", kViewerToken);
    write_secret(dir_.path() / "secrets/global", kGlobalToken);
  }
  std::string global_viewers() const {
    return "viewer_tokens:\n  - {file: " + (dir_.path() / "secrets/global").string() + "}\n";
  }
};

TEST_F(PagesAccessTest, PrivateRunsNeedATokenPublicOnesAreOpenAndTheDagHasItsEdges) {
  TestForge forge;
  write_viewer_secrets();
  const std::string secret_sha = make_repo("alice/secret", {{".github/workflows/ci.yml", kDiamond}});
  const std::string open_sha = make_repo("bob/open", {{".github/workflows/ci.yml", kOneJob}});
  write_config(forge, {{"alice/secret", "github", private_repo_extra()}, {"bob/open", "github", ""}}, global_viewers());
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "a-1", github_push("alice/secret", clone_url("alice/secret"), secret_sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t hidden = run_id_of(accepted);
  accepted = deliver(ForgeKind::github, "push", "b-1", github_push("bob/open", clone_url("bob/open"), open_sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t open = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return finished_as_admin(hidden) && finished_as_admin(open); }, 400s)) << slurp(log_file());
  ASSERT_EQ(state_as_admin(hidden), "success");

  const std::string run = "/runs/" + std::to_string(hidden);
  const std::string log = run + "/jobs/.github%2Fworkflows%2Fci.yml%2Fjoin/log";
  const std::vector<std::string> private_paths{run,
                                               log,
                                               log + "?raw=1",
                                               log + "?raw=1&after=0",
                                               "/api/runs/" + std::to_string(hidden),
                                               "/api/runs/" + std::to_string(hidden) + "/actions"};
  const std::string missing = get("/runs/999999").body;

  // Without a token, or with a wrong one: as if the run did not exist.
  for (const auto& path : private_paths) {
    auto anonymous = get(path);
    EXPECT_EQ(anonymous.status, 404) << path;
    EXPECT_EQ(anonymous.body.find("join-ran"), std::string::npos) << path;
    EXPECT_EQ(get_bearer(path, "viewer-token-alice-2c70").status, 404) << "one character off: " << path;
    EXPECT_EQ(get_bearer(path, "viewer-token-alice-2c7").status, 404) << "a prefix: " << path;
    EXPECT_EQ(get_with(path, {{"Cookie", "sandci_session=" + std::string(64, 'a')}}).status, 404) << path;
  }
  EXPECT_EQ(get(run).body, missing) << "a private run's 404 says no more than a missing run's";
  const std::string list = get("/runs").body;
  EXPECT_EQ(list.find("href=\"" + run + "\""), std::string::npos) << list;
  EXPECT_NE(list.find("href=\"/runs/" + std::to_string(open) + "\""), std::string::npos) << list;
  auto api_list = json::parse(get("/api/runs").body, nullptr, false);
  ASSERT_TRUE(api_list.is_object());
  ASSERT_EQ(api_list["runs"].size(), 1u) << api_list.dump();
  EXPECT_EQ(api_list["runs"][0]["id"], open);

  // The public repository's pages are open to all.
  EXPECT_EQ(get("/runs/" + std::to_string(open)).status, 200);
  auto open_log = get("/runs/" + std::to_string(open) + "/jobs/.github%2Fworkflows%2Fci.yml%2Fhello/log?raw=1");
  EXPECT_EQ(open_log.status, 200);
  EXPECT_NE(open_log.body.find("hello-public"), std::string::npos);

  // The repository's viewer token, a global viewer token and the admin token see it.
  for (const char* token : {kViewerToken, kGlobalToken, kAdminToken})
    for (const auto& path : private_paths) EXPECT_EQ(get_bearer(path, token).status, 200) << path;
  EXPECT_NE(get_bearer(log + "?raw=1", kViewerToken).body.find("join-ran"), std::string::npos);
  auto listed = json::parse(get_bearer("/api/runs", kViewerToken).body, nullptr, false);
  ASSERT_TRUE(listed.is_object());
  EXPECT_EQ(listed["runs"].size(), 2u);
  EXPECT_NE(get_bearer("/runs", kViewerToken).body.find("href=\"" + run + "\""), std::string::npos);

  // The login form sets a cookie holding an HMAC, never the token.
  auto answer = post_form("/login", "token=" + std::string(kViewerToken) + "&next=" + agent::server::percent_encode(run));
  ASSERT_EQ(answer.status, 303) << answer.body;
  EXPECT_EQ(answer.headers.get("Location").value_or(""), run);
  const std::string set_cookie = answer.headers.get("Set-Cookie").value_or("");
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
  EXPECT_EQ(set_cookie.find(kViewerToken), std::string::npos) << "the token itself is never the cookie";
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  for (const auto& path : private_paths) EXPECT_EQ(get_with(path, {{"Cookie", cookie}}).status, 200) << path;
  EXPECT_NE(get_with("/runs", {{"Cookie", "theme=dark; " + cookie}}).body.find("href=\"" + run + "\""), std::string::npos);
  // A wrong token gets the form again and no cookie; the next target cannot leave the agent.
  auto refused = post_form("/login", "token=nope&next=%2Fruns");
  EXPECT_EQ(refused.status, 403);
  EXPECT_FALSE(refused.headers.get("Set-Cookie").has_value());
  EXPECT_NE(refused.body.find("not accepted"), std::string::npos);
  auto offsite = post_form("/login", "token=" + std::string(kViewerToken) + "&next=%2F%2Fevil.example%2F");
  EXPECT_EQ(offsite.headers.get("Location").value_or(""), "/runs");
  // The ?token= exchange sets the same cookie and drops the token from the address.
  auto exchanged = get("/login?token=" + std::string(kViewerToken) + "&next=" + agent::server::percent_encode(run));
  EXPECT_EQ(exchanged.status, 303);
  EXPECT_EQ(exchanged.headers.get("Location").value_or(""), run);
  EXPECT_EQ(exchanged.headers.get("Set-Cookie").value_or("").substr(0, cookie.size()), cookie);
  // Logging out clears the cookie.
  auto out = post_form("/logout", "");
  EXPECT_EQ(out.status, 303);
  EXPECT_NE(out.headers.get("Set-Cookie").value_or("").find("Max-Age=0"), std::string::npos);

  // The diamond: setup -> left, setup -> right, left -> join, right -> join.
  const std::string page = get_bearer(run, kViewerToken).body;
  EXPECT_EQ(count(page, "<path class=\"edge\""), 4u) << page;
  const std::string prefix = ".github/workflows/ci.yml/";
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"setup", "left"}, {"setup", "right"}, {"left", "join"}, {"right", "join"}})
    EXPECT_NE(page.find("data-from=\"" + prefix + from + "\" data-to=\"" + prefix + to + "\""), std::string::npos)
        << from << " -> " << to;
  EXPECT_EQ(count(get("/runs/" + std::to_string(open)).body, "<path class=\"edge\""), 0u);

  // Health and metrics are not pages.
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(get("/metrics").status, 200);
  const std::string agent_log = slurp(log_file());
  for (const char* token : {kViewerToken, kGlobalToken})
    EXPECT_EQ(agent_log.find(token), std::string::npos) << "a viewer token reached the agent's log";
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(PagesAccessTest, RunPageFormsNeedTheCsrfTokenAndTheBearerApiDoesNot) {
  TestForge forge;
  write_viewer_secrets();
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSlow}});
  write_config(forge, {{}}, global_viewers());
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "s-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t id = run_id_of(accepted);
  const std::string run = "/runs/" + std::to_string(id);
  const std::string origin = agent_url();
  // Running, with its job stored: a cancel now ends a job, so a re-run of failed jobs is offered after.
  ASSERT_TRUE(eventually([&] {
    auto body = json::parse(get_bearer("/api/runs/" + std::to_string(id), kAdminToken).body, nullptr, false);
    return body.is_object() && body.value("state", "") == "running" && !body["jobs"].empty();
  })) << slurp(log_file());

  // A visitor and a (non-admin) viewer see no forms.
  EXPECT_EQ(get(run).body.find("action=\"" + run + "/cancel\""), std::string::npos);
  const std::string viewer_cookie = login(kGlobalToken);
  ASSERT_FALSE(viewer_cookie.empty());
  EXPECT_EQ(get_with(run, {{"Cookie", viewer_cookie}}).body.find("name=\"csrf\""), std::string::npos);

  const std::string admin_cookie = login(kAdminToken, run);
  ASSERT_FALSE(admin_cookie.empty());
  const std::string page = get_with(run, {{"Cookie", admin_cookie}}).body;
  std::smatch found;
  ASSERT_TRUE(std::regex_search(page, found, std::regex("action=\"" + run + "/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"([0-9a-f]+)\"")))
      << page;
  const std::string csrf = found[1];

  // Without the token, with a wrong one, from another site, or a viewer's session: 403, nothing done.
  EXPECT_EQ(post_form(run + "/cancel", "", {{"Cookie", admin_cookie}}).status, 403);
  EXPECT_EQ(post_form(run + "/cancel", "csrf=" + std::string(csrf.size(), '0'), {{"Cookie", admin_cookie}}).status, 403);
  EXPECT_EQ(post_form(run + "/cancel", "csrf=" + csrf, {{"Cookie", admin_cookie}, {"Origin", "http://evil.example"}}).status,
            403);
  EXPECT_EQ(post_form(run + "/cancel", "csrf=" + csrf, {{"Cookie", admin_cookie}, {"Referer", "http://evil.example/x"}})
                .status,
            403);
  EXPECT_EQ(post_form(run + "/cancel", "csrf=" + csrf, {{"Cookie", viewer_cookie}}).status, 403);
  EXPECT_EQ(post_form(run + "/cancel", "csrf=" + csrf).status, 403) << "no session at all";
  EXPECT_FALSE(finished_as_admin(id)) << "a refused form cancelled the run";
  EXPECT_EQ(actions_of(id).size(), 0u);

  // With it, from the agent's own page: cancelled, and the browser is sent back to the run.
  auto done = post_form(run + "/cancel", "csrf=" + csrf, {{"Cookie", admin_cookie}, {"Origin", origin}});
  ASSERT_EQ(done.status, 303) << done.body;
  EXPECT_EQ(done.headers.get("Location").value_or(""), run);
  ASSERT_TRUE(eventually([&] { return finished_as_admin(id); })) << slurp(log_file());
  EXPECT_EQ(state_as_admin(id), "cancelled");
  auto actions = actions_of(id);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0]["action"], "cancel");
  EXPECT_EQ(actions[0]["actor"], "admin (run page)");

  // The finished run's page offers the re-runs; the bearer API still works without CSRF.
  const std::string after = get_with(run, {{"Cookie", admin_cookie}}).body;
  EXPECT_NE(after.find("action=\"" + run + "/rerun\""), std::string::npos) << after;
  EXPECT_NE(after.find("action=\"" + run + "/rerun-failed\""), std::string::npos);
  auto rerun = post("/api/runs/" + std::to_string(id) + "/rerun");
  ASSERT_EQ(rerun.status, 202) << rerun.body;
  const std::int64_t second = json::parse(rerun.body)["run"].get<std::int64_t>();
  EXPECT_EQ(post("/api/runs/" + std::to_string(second) + "/cancel").status, 202);
  ASSERT_TRUE(eventually([&] { return finished_as_admin(second); }));
  const auto cli = runs_cli({"cancel", std::to_string(second), "--token-file", admin_token_file()});
  EXPECT_NE(cli.output.find("already ended"), std::string::npos) << cli.output << " (the CLI reached the route)";
  EXPECT_EQ(agent_.terminate(), 0);
}

// The cookie's key is kept in the state folder: a login from before a restart still
// opens the private run after it; deleting the key file and restarting logs it out;
// a key file that is not one to trust is replaced (logged) and the agent starts; a
// viewer token removed by a reload stops its cookie at once; a key that cannot be
// written at all stops the start.
TEST_F(PagesAccessTest, ALoginOutlivesRestartsUntilTheKeyFileIsDeleted) {
  TestForge forge;
  write_viewer_secrets();
  const std::string sha = make_repo("alice/secret", {{".github/workflows/ci.yml", kOneJob}});
  write_config(forge, {{"alice/secret", "github", private_repo_extra()}});
  start_agent();
  const fs::path key_file = state() / "session.key";
  struct stat info {};
  ASSERT_EQ(::lstat(key_file.c_str(), &info), 0) << slurp(log_file());
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(info.st_size, 32);
  const std::string key = slurp(key_file);
  EXPECT_NE(slurp(log_file()).find("event=session_key_created file=" + key_file.string()), std::string::npos);

  auto accepted = deliver(ForgeKind::github, "push", "k-1", github_push("alice/secret", clone_url("alice/secret"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t id = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return finished_as_admin(id); }, 400s)) << slurp(log_file());
  EXPECT_EQ(state_as_admin(id), "success");
  const std::string run = "/runs/" + std::to_string(id);
  const std::string cookie = login(kViewerToken, run);
  ASSERT_FALSE(cookie.empty());
  ASSERT_EQ(get_with(run, {{"Cookie", cookie}}).status, 200);
  ASSERT_EQ(get(run).status, 404) << "private";

  // Restarted (an upgrade, a crash): the same key, the same cookie still opens the run.
  EXPECT_EQ(agent_.terminate(), 0);
  start_agent();
  EXPECT_EQ(get_with(run, {{"Cookie", cookie}}).status, 200) << "logged out by a restart";
  EXPECT_EQ(slurp(key_file), key);
  EXPECT_EQ(login(kViewerToken, run), cookie) << "a login after the restart gets the same cookie";

  // A crash (SIGKILL) keeps it too.
  agent_.kill_now();
  start_agent();
  EXPECT_EQ(get_with(run, {{"Cookie", cookie}}).status, 200);

  // Deleting the key file and restarting logs everybody out; a new login works.
  EXPECT_EQ(agent_.terminate(), 0);
  ASSERT_TRUE(fs::remove(key_file));
  start_agent();
  EXPECT_EQ(get_with(run, {{"Cookie", cookie}}).status, 404) << "still logged in with a new key";
  const std::string renewed_key = slurp(key_file);
  EXPECT_EQ(renewed_key.size(), 32u);
  EXPECT_NE(renewed_key, key);
  const std::string renewed = login(kViewerToken, run);
  ASSERT_FALSE(renewed.empty());
  EXPECT_NE(renewed, cookie);
  EXPECT_EQ(get_with(run, {{"Cookie", renewed}}).status, 200);

  // A key file that is not one to trust (here a symbolic link to a key someone
  // else knows) is replaced with a warning; the agent starts and serves.
  EXPECT_EQ(agent_.terminate(), 0);
  const fs::path planted = dir_.path() / "planted.key";
  write_secret(planted, std::string(31, 'p'));  // 31 bytes and the newline: a key's size
  ASSERT_TRUE(fs::remove(key_file));
  fs::create_symlink(planted, key_file);
  start_agent();
  EXPECT_NE(slurp(log_file()).find("event=session_key_replaced file=" + key_file.string() + " reason=\"" +
                                   key_file.string() + " is a symbolic link\""),
            std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(key_file)));
  EXPECT_EQ(slurp(planted), std::string(31, 'p') + "\n") << "the link was not followed";
  EXPECT_EQ(get_with(run, {{"Cookie", renewed}}).status, 404);
  const std::string latest = login(kViewerToken, run);
  EXPECT_EQ(get_with(run, {{"Cookie", latest}}).status, 200);

  // The viewer token removed from the config (a reload): its cookie opens nothing.
  write_config(forge, {{"alice/secret", "github", "    pages: private\n"}});
  const std::string reloaded = "event=config_reloaded";
  ASSERT_EQ(::kill(agent_.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return slurp(log_file()).find(reloaded) != std::string::npos; }, 30s))
      << slurp(log_file());
  EXPECT_EQ(get_with(run, {{"Cookie", latest}}).status, 404) << "the cookie of a removed token";
  EXPECT_EQ(get_bearer(run, kAdminToken).status, 200);

  // The key is never logged (as bytes or as hex).
  const std::string agent_log = slurp(log_file());
  for (const std::string& logged_key : {key, renewed_key, slurp(key_file)}) {
    std::string hex;
    for (unsigned char c : logged_key) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    EXPECT_EQ(agent_log.find(logged_key), std::string::npos);
    EXPECT_EQ(agent_log.find(hex), std::string::npos);
  }
  EXPECT_EQ(agent_.terminate(), 0);

  // No key can be written (a folder in its place): the agent does not start, and says why.
  ASSERT_TRUE(fs::remove(key_file));
  fs::create_directory(key_file);
  agent_ = AgentProcess(dir_.path() / "agent.yml", log_file());
  EXPECT_EQ(agent_.wait_exit(30s), 1);
  EXPECT_NE(slurp(log_file()).find("event=start_failed reason=session_key error=\"cannot write the session key " +
                                   key_file.string() + ": Is a directory\""),
            std::string::npos);
}

}  // namespace
}  // namespace sandci::agent::testing
