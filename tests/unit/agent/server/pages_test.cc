// The page renderers: a job log as HTML (steps, groups, ANSI colours, anchors,
// escaping), the run list's query filters, and the pages as Routes serves them over a
// real SQLite store in a temp dir (no network: requests are built here).
#include "agent/server/pages.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/config/config_loader.h"
#include "agent/server/routes.h"
#include "support/temp_dir.h"

namespace sandci::agent::server {
namespace {

namespace fs = std::filesystem;
using sandci::testing::TempDir;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(AnsiToHtml, ColoursAndBoldBecomeClassedSpans) {
  EXPECT_EQ(ansi_to_html("\x1b[31mred\x1b[0m plain"), "<span class=\"ansi-31\">red</span> plain");
  EXPECT_EQ(ansi_to_html("\x1b[1;92mok\x1b[m"), "<span class=\"ansi-92 ansi-bold\">ok</span>");
  EXPECT_EQ(ansi_to_html("\x1b[1mB\x1b[34mb\x1b[22mc"),
            "<span class=\"ansi-bold\">B</span><span class=\"ansi-34 ansi-bold\">b</span>"
            "<span class=\"ansi-34\">c</span>")
      << "each change closes the span and opens one with the new state";
}

TEST(AnsiToHtml, UnclosedColourEndsWithTheLineAndOtherSequencesVanish) {
  EXPECT_EQ(ansi_to_html("\x1b[33mwarn"), "<span class=\"ansi-33\">warn</span>");
  EXPECT_EQ(ansi_to_html("a\x1b[2Kb\x1b[38;5;200mc"), "abc") << "cursor moves and 256 colours are dropped";
  EXPECT_EQ(ansi_to_html("trailing \x1b["), "trailing ");
}

TEST(AnsiToHtml, MarkupInsideColouredTextIsEscaped) {
  EXPECT_EQ(ansi_to_html("\x1b[31m<script>alert(1)</script>\x1b[0m"),
            "<span class=\"ansi-31\">&lt;script&gt;alert(1)&lt;/script&gt;</span>");
}

const std::string kLog =
    "2026-11-30T13:00:00.000Z ##[step] Set up job\n"
    "2026-11-30T13:00:00.100Z image debian\n"
    "2026-11-30T13:00:01.000Z ##[step] Run make <all>\n"
    "2026-11-30T13:00:01.100Z ##[group]Compiler flags\n"
    "2026-11-30T13:00:01.200Z -O2\n"
    "2026-11-30T13:00:01.300Z ##[endgroup]\n"
    "2026-11-30T13:00:02.000Z <script>alert('x')</script>\n"
    "2026-11-30T13:00:03.000Z \x1b[32mdone\x1b[0m\n";

TEST(RenderLog, StepsAndGroupsAreNestedDetails) {
  const RenderedLog log = render_log(kLog, false);
  EXPECT_EQ(log.lines, 8u);
  EXPECT_EQ(count(log.html, "<details open class=\"step\""), 2u);
  EXPECT_EQ(count(log.html, "<details open class=\"group\""), 1u);
  EXPECT_EQ(count(log.html, "<details"), count(log.html, "</details>")) << log.html;
  EXPECT_NE(log.html.find("</a>Set up job</summary>"), std::string::npos) << log.html;
  EXPECT_NE(log.html.find("</a>Run make &lt;all&gt;</summary>"), std::string::npos) << "step names are escaped";
  // The group sits inside the second step and holds -O2; the next line is after it.
  const auto step2 = log.html.find("id=\"L3\"");
  const auto group = log.html.find("id=\"L4\"");
  const auto flag = log.html.find(">-O2<");
  const auto group_end = log.html.find("</details>", flag);
  const auto after = log.html.find("id=\"L7\"");
  ASSERT_NE(step2, std::string::npos);
  EXPECT_LT(step2, group);
  EXPECT_LT(group, flag);
  EXPECT_LT(group_end, after);
  EXPECT_EQ(log.html.find("endgroup"), std::string::npos);
}

TEST(RenderLog, EveryLineHasAnAnchorLinkingToItself) {
  const RenderedLog log = render_log(kLog, false);
  for (int n : {1, 2, 3, 4, 5, 7, 8}) {
    const std::string id = "L" + std::to_string(n);
    EXPECT_EQ(count(log.html, "id=\"" + id + "\""), 1u) << id;
    EXPECT_EQ(count(log.html, "href=\"#" + id + "\""), 1u) << id;
  }
}

TEST(RenderLog, JobOutputIsTextNeverMarkup) {
  const RenderedLog log = render_log(kLog, false);
  EXPECT_EQ(log.html.find("<script"), std::string::npos) << log.html;
  EXPECT_NE(log.html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(log.html.find("<span class=\"ansi-32\">done</span>"), std::string::npos);
  const RenderedLog hostile = render_log("2026-11-30T13:00:00Z ##[group]<img src=x onerror=alert(1)>\n", false);
  EXPECT_EQ(hostile.html.find("<img"), std::string::npos) << hostile.html;
}

TEST(RenderLog, TimestampsOnlyWhenAsked) {
  EXPECT_EQ(render_log(kLog, false).html.find("2026-11-30T13:00:00.100Z"), std::string::npos);
  EXPECT_NE(render_log(kLog, true).html.find("<span class=\"ts\">2026-11-30T13:00:00.100Z</span>"),
            std::string::npos);
}

TEST(RenderLog, TheRunnersClockTimesAreTimestampsToo) {
  const RenderedLog log = render_log("13:36:53.626 ##[step] Print things\n13:36:53.750 12 apples\n", false);
  EXPECT_NE(log.html.find("</a>Print things</summary>"), std::string::npos) << log.html;
  EXPECT_NE(log.html.find(">12 apples<"), std::string::npos) << log.html;
  EXPECT_EQ(log.html.find("13:36"), std::string::npos);
}

TEST(RenderLog, UnbalancedMarkersAndLinesWithoutTimestampsStillRender) {
  const RenderedLog log = render_log("##[endgroup]\nplain line\n2026-11-30T13:00:00Z ##[group]open\nx", false);
  EXPECT_EQ(log.lines, 4u);
  EXPECT_EQ(count(log.html, "<details"), count(log.html, "</details>"));
  EXPECT_NE(log.html.find(">plain line<"), std::string::npos);
  EXPECT_NE(log.html.find("id=\"L4\""), std::string::npos) << "a last line without newline counts";
}

TEST(RenderLog, NumbersFromTheFirstLineGiven) {
  const RenderedLog log = render_log("a\nb\n", false, 41);
  EXPECT_EQ(log.lines, 2u);
  EXPECT_NE(log.html.find("id=\"L41\""), std::string::npos);
  EXPECT_NE(log.html.find("href=\"#L42\""), std::string::npos);
  EXPECT_EQ(log.html.find("id=\"L1\""), std::string::npos);
}

TEST(QueryParam, DecodesAndFindsTheExactName) {
  EXPECT_EQ(query_param("/runs?ref=feature%2Fx&state=running", "ref"), "feature/x");
  EXPECT_EQ(query_param("/runs?xref=a&ref=b", "ref"), "b");
  EXPECT_EQ(query_param("/runs?repository=a+b", "repository"), "a b");
  EXPECT_EQ(query_param("/runs?flag", "flag"), "");
  EXPECT_EQ(query_param("/runs", "ref"), std::nullopt);
  EXPECT_EQ(query_param("/runs?ref=%zz", "ref"), std::nullopt);
}

TEST(RunFilterFromQuery, BranchesStatesAndPaging) {
  auto filter = run_filter_from_query("/runs?repository=alice%2Fhello&ref=main&state=failure&before=40");
  ASSERT_TRUE(filter) << filter.error();
  EXPECT_EQ(filter->repository, "alice/hello");
  EXPECT_EQ(filter->ref, "refs/heads/main");
  EXPECT_EQ(filter->state, store::RunState::failure);
  EXPECT_EQ(filter->before_id, 40);
  auto tag = run_filter_from_query("/runs?ref=refs%2Ftags%2Fv1&state=");
  ASSERT_TRUE(tag);
  EXPECT_EQ(tag->ref, "refs/tags/v1");
  EXPECT_FALSE(tag->state);
  auto none = run_filter_from_query("/");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->repository, "");
  EXPECT_FALSE(none->before_id);
}

TEST(RunFilterFromQuery, BadValuesAreErrorsNamingThem) {
  auto state = run_filter_from_query("/runs?state=green");
  ASSERT_FALSE(state);
  EXPECT_NE(state.error().find("green"), std::string::npos);
  EXPECT_FALSE(run_filter_from_query("/runs?before=-3"));
  EXPECT_FALSE(run_filter_from_query("/runs?before=12abc"));
}

// Routes over a real SQLite store: what the pages show for runs put there.
class PagesRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "secret") << "s3cret\n";
    fs::permissions(dir_ / "secret", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    std::ofstream(dir_ / "agent.yml") << "public_url: http://127.0.0.1:9\nstate_dir: " << dir_.string()
                                      << "\nrepositories:\n  - name: alice/hello\n    forge: github\n"
                                         "    webhook_secret: {file: secret}\n    api_token: {file: secret}\n    pages: public\n"
                                         "  - name: team/app\n    forge: github\n"
                                         "    webhook_secret: {file: secret}\n    api_token: {file: secret}\n    pages: public\n"
                                         "  - name: carol/private\n    forge: github\n"
                                         "    webhook_secret: {file: secret}\n    api_token: {file: secret}\n"
                                         "    viewer_tokens: [{file: secret}]\n";
    auto loaded = config::load_agent_config(dir_ / "agent.yml", {});
    ASSERT_TRUE(loaded.ok());
    config_ = *loaded.config;
    auto store = store::open_sqlite_store(dir_ / "agent.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    intake_ = std::make_unique<WebhookIntake>(config_, *store_, [] { return 1000; },
                                              [](std::int64_t, const std::vector<std::int64_t>&) {});
    routes_ = std::make_unique<Routes>(config_, *store_, *intake_, [] { return 1000; }, nullptr);
  }
  void TearDown() override {
    routes_.reset();
    intake_.reset();
    store_.reset();
  }
  std::int64_t add_run(const std::string& repository, const std::string& ref, const std::string& title) {
    store::NewRun run;
    run.repository = repository;
    run.forge = "github";
    run.event = "push";
    run.ref = ref;
    run.sha = "0123456789abcdef0123456789abcdef01234567";
    run.title = title;
    auto id = store_->enqueue_run(run, 1000);
    EXPECT_TRUE(id);
    return id.value_or(0);
  }
  http::HttpResponse get(const std::string& target, const std::string& bearer = "") {
    http::HttpRequest request;
    request.method = "GET";
    request.target = target;
    if (!bearer.empty()) request.headers.set("Authorization", "Bearer " + bearer);
    return routes_->handle(request);
  }

  TempDir temp_{"sandci-pages-"};
  fs::path dir_ = temp_.path();
  config::AgentConfig config_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<WebhookIntake> intake_;
  std::unique_ptr<Routes> routes_;
};

TEST_F(PagesRoutesTest, RunListFiltersByRepositoryBranchAndState) {
  const auto a = add_run("alice/hello", "refs/heads/main", "on main");
  const auto b = add_run("alice/hello", "refs/heads/feature", "on feature");
  const auto c = add_run("team/app", "refs/heads/main", "other repo");
  ASSERT_TRUE(store_->cancel_queued(b, 2000).value());
  auto link = [](std::int64_t id) { return "href=\"/runs/" + std::to_string(id) + "\""; };

  auto all = get("/");
  ASSERT_EQ(all.status, 200);
  EXPECT_LT(all.body.find(link(c)), all.body.find(link(a))) << "newest first";
  for (auto id : {a, b, c}) EXPECT_NE(all.body.find(link(id)), std::string::npos);

  auto main = get("/runs?ref=main");
  EXPECT_NE(main.body.find(link(a)), std::string::npos);
  EXPECT_NE(main.body.find(link(c)), std::string::npos);
  EXPECT_EQ(main.body.find(link(b)), std::string::npos);

  auto repo = get("/runs?repository=alice%2Fhello&state=queued");
  EXPECT_NE(repo.body.find(link(a)), std::string::npos);
  EXPECT_EQ(repo.body.find(link(b)), std::string::npos) << "cancelled";
  EXPECT_EQ(repo.body.find(link(c)), std::string::npos) << "other repository";

  EXPECT_EQ(get("/runs?state=green").status, 400);
}

TEST_F(PagesRoutesTest, PrivateRepositoryRunsAreMissingWithoutItsToken) {
  const auto open = add_run("alice/hello", "refs/heads/main", "open");
  const auto hidden = add_run("carol/private", "refs/heads/main", "hidden title");
  const std::string page = "/runs/" + std::to_string(hidden);
  for (const std::string& path : {page, page + "/jobs/ci.yml%2Fbuild/log", page + "/jobs/ci.yml%2Fbuild/log?raw=1",
                                  "/api/runs/" + std::to_string(hidden), "/api/runs/" + std::to_string(hidden) + "/actions"}) {
    EXPECT_EQ(get(path).status, 404) << path;
    EXPECT_EQ(get(path).body, get("/runs/99999").body) << path;
    EXPECT_EQ(get(path, "s3cre").status, 404) << path;
  }
  EXPECT_EQ(get(page, "s3cret").status, 200);
  EXPECT_EQ(get("/api/runs/" + std::to_string(hidden), "s3cret").status, 200);
  const std::string list = get("/runs").body;
  EXPECT_EQ(list.find("hidden title"), std::string::npos) << list;
  EXPECT_NE(list.find("href=\"/runs/" + std::to_string(open) + "\""), std::string::npos);
  EXPECT_NE(get("/runs", "s3cret").body.find("hidden title"), std::string::npos);
  EXPECT_EQ(get("/runs?repository=carol%2Fprivate").body.find("hidden title"), std::string::npos);
}

TEST_F(PagesRoutesTest, RunListPagesWithBefore) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 53; ++i) ids.push_back(add_run("alice/hello", "refs/heads/main", "run " + std::to_string(i)));
  auto first = get("/runs?ref=main");
  const std::string next = "href=\"/runs?before=" + std::to_string(ids[3]) + "&amp;ref=refs%2Fheads%2Fmain\"";
  EXPECT_NE(first.body.find(next), std::string::npos) << "the last shown is the 50th newest";
  EXPECT_EQ(first.body.find("href=\"/runs/" + std::to_string(ids[2]) + "\""), std::string::npos);
  auto second = get("/runs?before=" + std::to_string(ids[3]) + "&ref=refs%2Fheads%2Fmain");
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(second.body.find("href=\"/runs/" + std::to_string(ids[i]) + "\""), std::string::npos) << i;
  EXPECT_EQ(second.body.find("href=\"/runs/" + std::to_string(ids[3]) + "\""), std::string::npos);
  EXPECT_EQ(second.body.find("older runs"), std::string::npos) << "no page after the last";
}

TEST_F(PagesRoutesTest, RunAndLogPagesEscapeEverythingAndLoadOnlyOwnScript) {
  const auto id = add_run("alice/hello", "refs/heads/main", "fix <b>bold</b> & \"quotes\"");
  auto run = store_->claim_next_run("me", 60'000, 2000);
  ASSERT_TRUE(run && *run);
  const fs::path log = dir_ / "job.log";
  std::ofstream(log) << "2026-11-30T13:00:00Z ##[step] build\n2026-11-30T13:00:01Z <script>alert(1)</script>\n";
  store::JobRecord job;
  job.run_id = id;
  job.key = "ci.yml/build <x>";
  job.workflow = "ci.yml";
  job.name = "build <x>";
  job.state = store::JobState::failure;
  job.started_ms = 2000;
  job.finished_ms = 14'400;
  job.log_path = log.string();
  ASSERT_TRUE(store_->put_job((*run)->claim(), job).value());

  auto page = get("/runs/" + std::to_string(id));
  ASSERT_EQ(page.status, 200);
  const std::string csp = page.headers.get("Content-Security-Policy").value_or("");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(count(page.body, "<script"), 1u) << "only the agent's own script file";
  EXPECT_NE(page.body.find("<script src=\"/static/pages.js\" defer></script>"), std::string::npos);
  EXPECT_NE(page.body.find("fix &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;"), std::string::npos);
  EXPECT_NE(page.body.find(">build &lt;x&gt;</text>"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("class=\"jstate st-failure\""), std::string::npos);
  EXPECT_NE(page.body.find(">12s</text>"), std::string::npos) << "duration";
  const std::string log_link = "/runs/" + std::to_string(id) + "/jobs/ci.yml%2Fbuild%20%3Cx%3E/log";
  EXPECT_NE(page.body.find("href=\"" + log_link + "\""), std::string::npos);

  auto log_page = get(log_link);
  ASSERT_EQ(log_page.status, 200);
  EXPECT_EQ(count(log_page.body, "<script"), 1u) << log_page.body;
  EXPECT_NE(log_page.body.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(log_page.body.find("data-lines=\"2\""), std::string::npos);

  auto raw = get(log_link + "?raw=1");
  EXPECT_EQ(raw.headers.get("Content-Type").value_or(""), "text/plain; charset=utf-8");
  EXPECT_NE(raw.body.find("<script>alert(1)</script>"), std::string::npos) << "plain text, as stored";
  auto rest = get(log_link + "?raw=1&after=1");
  EXPECT_EQ(rest.body, "2026-11-30T13:00:01Z <script>alert(1)</script>\n");
  EXPECT_EQ(get(log_link + "?raw=1&after=2").body, "");
  EXPECT_EQ(get(log_link + "?raw=1&after=x").status, 400);

  auto script = get("/static/pages.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.headers.get("Content-Type").value_or(""), "text/javascript; charset=utf-8");
  EXPECT_EQ(script.body.find("innerHTML"), std::string::npos) << "job output is never parsed as markup";
  EXPECT_EQ(get("/static/pages.css").status, 200);
}

// A long log (over 2 MiB or 20,000 lines) is shown by its tail, from a whole line, with
// the file's own line numbers, so the page's poll (after=N) goes on where it ends.
TEST_F(PagesRoutesTest, LongLogShowsItsTailNumberedAsInTheFile) {
  const auto id = add_run("alice/hello", "refs/heads/main", "long");
  auto run = store_->claim_next_run("me", 60'000, 2000);
  ASSERT_TRUE(run && *run);
  const fs::path log = dir_ / "long.log";
  std::size_t lines = 0;
  {
    std::ofstream out(log);
    const std::string filler(99, 'x');  // 100 bytes a line with the newline
    for (; lines < 90'000; ++lines) out << filler << "\n";
    out << "13:00:00.000 last-line\n";
    ++lines;
  }
  store::JobRecord job;
  job.run_id = id;
  job.key = "ci.yml/long";
  job.workflow = "ci.yml";
  job.name = "long";
  job.state = store::JobState::running;
  job.log_path = log.string();
  ASSERT_TRUE(store_->put_job((*run)->claim(), job).value());
  auto page = get("/runs/" + std::to_string(id) + "/jobs/ci.yml%2Flong/log");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("id=\"L" + std::to_string(lines) + "\"><a class=\"num\" href=\"#L" +
                           std::to_string(lines) + "\">" + std::to_string(lines) + "</a><span class=\"tx\">last-line"),
            std::string::npos);
  EXPECT_NE(page.body.find("data-lines=\"" + std::to_string(lines) + "\""), std::string::npos);
  EXPECT_EQ(page.body.find("id=\"L1\""), std::string::npos);
  EXPECT_NE(page.body.find("of this log are left out"), std::string::npos);
  EXPECT_EQ(count(page.body, "<div class=\"ln\""), 20'000u) << "the last 20,000 lines";
  EXPECT_LT(page.body.size(), (5u << 20)) << "bounded";
  // The first line shown is whole: 100 x's minus the newline.
  const auto first = page.body.find("<span class=\"tx\">");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(page.body.substr(first + 17, 100), std::string(99, 'x') + "<");
}

}  // namespace
}  // namespace sandci::agent::server
