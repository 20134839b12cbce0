// PageAccess (who sees which repository's pages, the session cookie, CSRF), the
// config keys behind it, and the run page's DAG edges and action commits.
#include "agent/server/pages_access.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <fstream>
#include <tuple>

#include "agent/config/config_loader.h"
#include "agent/server/pages.h"
#include "unit/agent/store/store_test_support.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class PageAccessTest : public ::testing::Test {
 protected:
  PageAccessTest() {
    config_.public_url = "http://ci.example.org";
    config_.admin_token = config::Secret("admin-1");
    config_.viewer_tokens.emplace_back("global-1");
    add("acme/secret", false, "secret-viewer");
    add("acme/other", false, "other-viewer");
    add("acme/open", true, "");
  }
  void add(const std::string& name, bool pages_public, const std::string& token) {
    config::RepositoryConfig repository;
    repository.name = name;
    repository.pages_public = pages_public;
    if (!token.empty()) repository.viewer_tokens.emplace_back(token);
    config_.repositories.push_back(repository);
  }
  static http::HttpRequest with(const std::string& header, const std::string& value) {
    http::HttpRequest request;
    request.method = "GET";
    request.target = "/runs";
    if (!header.empty()) request.headers.set(header, value);
    return request;
  }
  Viewer bearer(const std::string& token) { return access_.viewer_of(with("Authorization", "Bearer " + token)); }
  bool sees(const Viewer& viewer, const std::string& repository) { return access_.may_view(viewer, "github", repository); }

  config::AgentConfig config_;
  PageAccess access_{config_};
};

TEST_F(PageAccessTest, EachTokenSeesWhatItIsFor) {
  const Viewer anonymous = access_.viewer_of(with("", ""));
  EXPECT_TRUE(sees(anonymous, "acme/open"));
  EXPECT_TRUE(sees(anonymous, "ACME/Open")) << "names compared as forges do";
  EXPECT_FALSE(sees(anonymous, "acme/secret"));
  EXPECT_FALSE(sees(anonymous, "gone/repo")) << "a repository no longer configured is private";
  EXPECT_FALSE(access_.may_view(anonymous, "gitlab", "acme/open")) << "another forge's repository of that name";

  const Viewer scoped = bearer("secret-viewer");
  EXPECT_TRUE(sees(scoped, "acme/secret"));
  EXPECT_FALSE(sees(scoped, "acme/other")) << "a repository's token opens only that repository";
  EXPECT_FALSE(scoped.admin);

  for (const char* token : {"global-1", "admin-1"}) {
    const Viewer all = bearer(token);
    EXPECT_TRUE(sees(all, "acme/secret")) << token;
    EXPECT_TRUE(sees(all, "acme/other")) << token;
    EXPECT_TRUE(sees(all, "gone/repo")) << token;
  }
  EXPECT_TRUE(bearer("admin-1").admin);
  EXPECT_FALSE(bearer("global-1").admin);

  for (const char* wrong : {"secret-viewe", "secret-viewer ", "Secret-viewer", "", "admin-2"}) {
    const Viewer nobody = bearer(wrong);
    EXPECT_FALSE(sees(nobody, "acme/secret")) << wrong;
    EXPECT_TRUE(nobody.session.empty()) << wrong;
  }
  EXPECT_TRUE(access_.viewer_of(with("Authorization", "Basic c2VjcmV0LXZpZXdlcg==")).session.empty());
}

TEST_F(PageAccessTest, TheCookieHoldsAnHmacThatOnlyThisAgentAccepts) {
  auto session = access_.session_for("secret-viewer");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->find("secret-viewer"), std::string::npos);
  EXPECT_TRUE(std::regex_match(*session, std::regex(R"([0-9]{1,12}\.[0-9a-f]{64})"))) << "<login time>.<HMAC-SHA256>";
  EXPECT_FALSE(access_.session_for("not-a-token"));

  const Viewer by_cookie = access_.viewer_of(with("Cookie", "a=b; sandci_session=" + *session + "; c=d"));
  EXPECT_TRUE(sees(by_cookie, "acme/secret"));
  EXPECT_FALSE(sees(by_cookie, "acme/other"));
  std::string tampered = *session;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_FALSE(sees(access_.viewer_of(with("Cookie", "sandci_session=" + tampered)), "acme/secret"));
  EXPECT_FALSE(sees(access_.viewer_of(with("Cookie", "sandci_session=secret-viewer")), "acme/secret"))
      << "the token itself is not a cookie";

  PageAccess rekeyed(config_);  // another key, as after session.key was deleted
  EXPECT_FALSE(sees(rekeyed.viewer_of(with("Cookie", "sandci_session=" + *session)), "acme/secret"));

  const std::string cookie = access_.set_cookie(*session);
  EXPECT_EQ(cookie.rfind("sandci_session=" + *session + ";", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "plain HTTP";
  config_.public_url = "https://ci.example.org";
  EXPECT_NE(access_.set_cookie(*session).find("; Secure"), std::string::npos);
  EXPECT_NE(access_.set_cookie("").find("Max-Age=0"), std::string::npos);
}

TEST_F(PageAccessTest, ACookieLastsAsLongAsItsTokenIsConfiguredAndTheKeyKept) {
  const std::string key(32, 'k');
  const PageAccess before(config_, key);
  const std::string viewer_cookie = "sandci_session=" + *before.session_for("secret-viewer");
  const std::string global_cookie = "sandci_session=" + *before.session_for("global-1");
  const std::string admin_cookie = "sandci_session=" + *before.session_for("admin-1");

  // The same key, as after a restart that read session.key: the cookies still work.
  const PageAccess after(config_, key);
  EXPECT_TRUE(sees(after.viewer_of(with("Cookie", viewer_cookie)), "acme/secret"));
  EXPECT_TRUE(after.viewer_of(with("Cookie", admin_cookie)).admin);

  // A token removed from the config (the config is read at each check, as after a
  // SIGHUP): its cookie opens nothing, the others still work.
  config_.repositories[0].viewer_tokens.clear();
  const Viewer removed = after.viewer_of(with("Cookie", viewer_cookie));
  EXPECT_FALSE(sees(removed, "acme/secret"));
  EXPECT_TRUE(removed.session.empty());
  EXPECT_TRUE(sees(after.viewer_of(with("Cookie", global_cookie)), "acme/secret"));
  config_.viewer_tokens.clear();
  EXPECT_FALSE(sees(after.viewer_of(with("Cookie", global_cookie)), "acme/secret"));
  config_.admin_token = config::Secret("admin-2");  // a changed admin token
  const Viewer old_admin = after.viewer_of(with("Cookie", admin_cookie));
  EXPECT_FALSE(old_admin.admin);
  EXPECT_EQ(after.csrf_token(old_admin), "") << "no admin forms either";
}

// A login lasts login_hours (read at each check: a reload applies to every cookie),
// its time is part of what the HMAC covers, and the browser is told the same.
TEST_F(PageAccessTest, ALoginLastsLoginHoursAndItsTimeCannotBeChanged) {
  std::int64_t now = 1'800'000'000;
  const PageAccess access(config_, std::string(32, 'k'), [&now] { return now; });
  const std::string cookie = *access.session_for("secret-viewer");
  auto sees_with = [&](const std::string& value) {
    return access.may_view(access.viewer_of(with("Cookie", "sandci_session=" + value)), "github", "acme/secret");
  };
  EXPECT_NE(access.set_cookie(cookie).find("; Max-Age=604800"), std::string::npos) << access.set_cookie(cookie);
  now += 168 * 3600 - 1;
  EXPECT_TRUE(sees_with(cookie)) << "a week less a second after the login";
  now += 1;
  EXPECT_FALSE(sees_with(cookie)) << "a week after the login";
  EXPECT_TRUE(access.viewer_of(with("Cookie", "sandci_session=" + cookie)).session.empty());

  // The login's time moved forward by hand: the HMAC no longer matches.
  const std::string later = std::to_string(now) + cookie.substr(cookie.find('.'));
  EXPECT_FALSE(sees_with(later));
  // A cookie from the future (more than the allowed clock skew) is none of ours.
  const std::string fresh = *access.session_for("secret-viewer");
  now -= 600;
  EXPECT_FALSE(sees_with(fresh));
  now += 600;
  EXPECT_TRUE(sees_with(fresh));

  config_.login_hours = 1;  // as after a reload
  EXPECT_NE(access.set_cookie(fresh).find("; Max-Age=3600"), std::string::npos);
  now += 3600;
  EXPECT_FALSE(sees_with(fresh)) << "an hour after the login, with login_hours 1";
  for (const char* malformed : {"", ".", "1.", "12345", "abc.def", "1234567890123.0000000000000000000000000000000000000000000000000000000000000000"})
    EXPECT_FALSE(sees_with(malformed)) << malformed;
}

TEST_F(PageAccessTest, CsrfTokenIsTiedToTheSessionAndTheOrigin) {
  const Viewer admin = access_.viewer_of(with("Cookie", "sandci_session=" + *access_.session_for("admin-1")));
  const std::string token = access_.csrf_token(admin);
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find(admin.session), std::string::npos);
  http::HttpRequest post = with("Host", "ci.example.org");
  post.method = "POST";
  EXPECT_TRUE(access_.csrf_ok(admin, post, token));
  EXPECT_FALSE(access_.csrf_ok(admin, post, ""));
  EXPECT_FALSE(access_.csrf_ok(admin, post, token.substr(1)));
  EXPECT_FALSE(access_.csrf_ok(bearer("global-1"), post, token)) << "another session's token";
  EXPECT_FALSE(access_.csrf_ok(Viewer{}, post, "")) << "no session, no token";

  post.headers.set("Origin", "http://ci.example.org");
  EXPECT_TRUE(access_.csrf_ok(admin, post, token));
  post.headers.set("Origin", "https://evil.example");
  EXPECT_FALSE(access_.csrf_ok(admin, post, token));
  post.headers.set("Origin", "null");
  EXPECT_FALSE(access_.csrf_ok(admin, post, token));
  post.headers.remove("Origin");
  post.headers.set("Referer", "http://ci.example.org/runs/3");
  EXPECT_TRUE(access_.csrf_ok(admin, post, token));
  post.headers.set("Referer", "http://evil.example/runs/3");
  EXPECT_FALSE(access_.csrf_ok(admin, post, token));
}

TEST(PagesConfig, PagesAndViewerTokensAreReadAsSecrets) {
  store::testing::TempDir dir;
  for (const char* name : {"secret", "viewer", "global"}) {
    std::ofstream(dir.path() / name) << name << "-value\n";
    fs::permissions(dir.path() / name, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  }
  auto write = [&](const std::string& repository_extra, const std::string& top_extra) {
    std::ofstream(dir.path() / "agent.yml")
        << "public_url: http://127.0.0.1:9\nstate_dir: " << dir.path().string() << "\n" << top_extra
        << "repositories:\n  - name: alice/hello\n    forge: github\n"
           "    webhook_secret: {file: secret}\n    api_token: {file: secret}\n"
        << repository_extra;
    return config::load_agent_config(dir.path() / "agent.yml", {});
  };
  auto defaults = write("", "");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults.config->repositories[0].pages_public) << "private unless the config says public";
  EXPECT_TRUE(defaults.config->viewer_tokens.empty());

  auto set = write("    pages: public\n    viewer_tokens: [{file: viewer}]\n", "viewer_tokens:\n  - {file: global}\n");
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set.config->repositories[0].pages_public);
  ASSERT_EQ(set.config->repositories[0].viewer_tokens.size(), 1u);
  EXPECT_EQ(set.config->repositories[0].viewer_tokens[0].reveal(), "viewer-value");
  ASSERT_EQ(set.config->viewer_tokens.size(), 1u);
  EXPECT_EQ(set.config->viewer_tokens[0].reveal(), "global-value");
  const auto secrets = set.config->secret_values();
  EXPECT_NE(std::find(secrets.begin(), secrets.end(), "viewer-value"), secrets.end()) << "masked in logs";
  EXPECT_NE(std::find(secrets.begin(), secrets.end(), "global-value"), secrets.end());

  for (const auto& [repository_extra, top_extra, expected] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"    pages: open\n", "", "unknown pages 'open'"},
           {"    viewer_tokens: [plain-text-token]\n", "", "secrets are never written in the config"},
           {"", "viewer_tokens: {file: global}\n", "'viewer_tokens' must be a list"},
       }) {
    auto bad = write(repository_extra, top_extra);
    ASSERT_FALSE(bad.ok()) << repository_extra << top_extra;
    std::string messages;
    for (const auto& d : bad.diagnostics) messages += d.message + "\n";
    EXPECT_NE(messages.find(expected), std::string::npos) << messages;
    EXPECT_EQ(messages.find("plain-text-token"), std::string::npos) << "a secret is never quoted";
  }
}

store::JobRecord job(const std::string& name, std::vector<std::string> needs) {
  store::JobRecord out;
  out.run_id = 1;
  out.key = "ci.yml/" + name;
  out.workflow = "ci";
  out.name = name;
  out.state = store::JobState::success;
  for (auto& need : needs) out.needs.push_back("ci.yml/" + need);
  return out;
}

TEST(RunPageDag, OneEdgePerNeedsAcrossConsecutiveAndFartherLevels) {
  store::RunRecord run;
  run.id = 1;
  run.state = store::RunState::success;
  // setup -> build -> test, and setup -> test and setup -> lint directly.
  const std::vector<store::JobRecord> jobs{job("setup", {}), job("build", {"setup"}), job("lint", {"setup"}),
                                           job("test", {"build", "setup"})};
  const std::string page = run_page_body(run, jobs);
  EXPECT_EQ(count(page, "<path class=\"edge\""), 4u) << page;
  EXPECT_NE(page.find("data-from=\"ci.yml/setup\" data-to=\"ci.yml/test\""), std::string::npos);
  // Levels: setup in column 0 (x=4), build and lint in column 1, test in column 2.
  EXPECT_NE(page.find("data-key=\"ci.yml/setup\" x=\"4\""), std::string::npos) << page;
  EXPECT_NE(page.find("data-key=\"ci.yml/build\" x=\"260\""), std::string::npos) << page;
  EXPECT_NE(page.find("data-key=\"ci.yml/test\" x=\"516\""), std::string::npos) << page;
  // An edge starts at the right side of the needed box and ends at the left of the job's.
  EXPECT_NE(page.find("data-from=\"ci.yml/setup\" data-to=\"ci.yml/build\" d=\"M204 27 "), std::string::npos) << page;
  EXPECT_NE(page.find(" 260 27\"/>"), std::string::npos) << page;
  // No needs, no edges; a need outside the workflow draws nothing.
  EXPECT_EQ(count(run_page_body(run, {job("a", {}), job("b", {"elsewhere"})}), "class=\"edge\""), 0u);
}

TEST(RunPageDag, ActionCommitsAndAdminFormsAreShownEscaped) {
  store::RunRecord run;
  run.id = 7;
  run.state = store::RunState::failure;
  RunPageExtras extras;
  store::ActionRefRecord ref;
  ref.repository = "acme/setup-<tool>";
  ref.ref = "v2";
  ref.commit = std::string(40, 'c');
  ref.url = "https://github.com/acme/setup-tool";
  extras.action_refs.push_back(ref);
  std::vector<store::JobRecord> jobs{job("build", {})};
  jobs[0].state = store::JobState::failure;
  const std::string visitor = run_page_body(run, jobs, extras);
  EXPECT_NE(visitor.find("acme/setup-&lt;tool&gt;"), std::string::npos) << visitor;
  EXPECT_NE(visitor.find(std::string(40, 'c')), std::string::npos);
  EXPECT_NE(visitor.find(">v2<"), std::string::npos);
  EXPECT_EQ(visitor.find("<form method=\"post\""), std::string::npos) << "no forms without the admin";

  extras.csrf = "abc123";
  const std::string admin = run_page_body(run, jobs, extras);
  EXPECT_NE(admin.find("action=\"/runs/7/rerun\"><input type=\"hidden\" name=\"csrf\" value=\"abc123\">"),
            std::string::npos)
      << admin;
  EXPECT_NE(admin.find("action=\"/runs/7/rerun-failed\""), std::string::npos);
  EXPECT_EQ(admin.find("action=\"/runs/7/cancel\""), std::string::npos) << "a finished run cannot be cancelled";
}

}  // namespace
}  // namespace sandci::agent::server
