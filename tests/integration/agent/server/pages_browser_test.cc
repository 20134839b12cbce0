// The agent's pages as a person sees them: the real daemon runs a real workflow and
// headless Chromium loads the run page and the log pages while the run goes on,
// then reads the DOM its scripts left (states, appended log lines, output shown
// as text) and takes screenshots.
#include <gtest/gtest.h>

#include <future>

#include "integration/agent/server/agent_fixture.h"
#include "integration/agent/server/headless_chromium.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

// `build` prints markup, a colour and a group (markers as a job may print them); `slow` needs it (the run page
// draws that edge) and is still running when the browser opens the pages, so what they show at the end came
// from polling.
const char* kWorkflow = R"(name: ci
on: [push]
jobs:
  build:
    runs-on: linux
    steps:
      - name: Print things
        run: |
          echo '<script>document.title="pwned"</script>'
          printf '\033[32mgreen-ok\033[0m\n'
          echo '##[group]Flags'
          echo 'flag-O2'
          echo '##[endgroup]'
  slow:
    needs: build
    runs-on: linux
    steps:
      - run: echo slow-started
      - run: sleep 10 && echo slow-finished
)";

class PagesBrowserTest : public AgentTest {};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(PagesBrowserTest, RunAndLogPagesShowStatesLiveAndOutputAsText) {
  if (!chromium_available()) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh)";
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kWorkflow}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "p-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::int64_t run = run_id_of(accepted);
  const std::string run_url = agent_url() + "/runs/" + std::to_string(run);
  const std::string slow_log = run_url + "/jobs/.github%2Fworkflows%2Fci.yml%2Fslow/log";
  const std::string build_log = run_url + "/jobs/.github%2Fworkflows%2Fci.yml%2Fbuild/log";

  // Open both pages while `slow` has started and not finished.
  ASSERT_TRUE(eventually([&] { return get(slow_log.substr(agent_url().size()) + "?raw=1").body.find("slow-started") != std::string::npos; }))
      << slurp(log_file());
  const std::string slow_before = get(slow_log.substr(agent_url().size()) + "?raw=1").body;
  const std::string state_before = run_state(run);
  auto run_dom = std::async(std::launch::async, [&] { return dump_dom(run_url, 100'000'000); });
  auto log_dom = std::async(std::launch::async, [&] { return dump_dom(slow_log, 100'000'000); });
  const std::string run_page = run_dom.get();
  const std::string slow_page = log_dom.get();
  ASSERT_TRUE(run_finished(run));
  EXPECT_EQ(run_state(run), "success");

  // What the browser shows now is what polling wrote: the server sent "running".
  EXPECT_EQ(state_before, "running");
  EXPECT_EQ(slow_before.find("slow-finished"), std::string::npos) << "too late to see the page live";
  EXPECT_NE(run_page.find("id=\"run-state\">success</span>"), std::string::npos) << run_page;
  EXPECT_NE(run_page.find("data-final=\"success\""), std::string::npos);
  EXPECT_EQ(count(run_page, ">success</text>"), 2u) << "both jobs' states";
  EXPECT_NE(run_page.find(">build</text>"), std::string::npos);
  EXPECT_NE(run_page.find(">slow</text>"), std::string::npos);
  // The edge build -> slow, drawn from build's box to slow's.
  EXPECT_EQ(count(run_page, "<path class=\"edge\""), 1u) << run_page;
  EXPECT_NE(run_page.find("data-from=\".github/workflows/ci.yml/build\" data-to=\".github/workflows/ci.yml/slow\""),
            std::string::npos);
  EXPECT_NE(run_page.find("id=\"login\" href=\"/login?next="), std::string::npos) << "a visitor is offered the login";
  EXPECT_NE(run_page.find(">a commit<"), std::string::npos) << "the commit message's first line";
  EXPECT_NE(run_page.find(sha), std::string::npos);
  EXPECT_NE(slow_page.find("slow-finished"), std::string::npos) << "appended while the job ran\n" << slow_page;
  EXPECT_NE(slow_page.find("id=\"job-state\">success</span>"), std::string::npos) << slow_page;
  EXPECT_EQ(count(slow_page, ">slow-started</span>"), 1u) << "no line twice\n" << slow_page;

  // The build log: markup shown as text, colours as classes, the group folded in.
  const std::string build_page = dump_dom(build_log);
  EXPECT_NE(build_page.find("&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;"), std::string::npos)
      << build_page;
  EXPECT_EQ(build_page.find("<script>document.title"), std::string::npos);
  EXPECT_EQ(build_page.find("<title>pwned"), std::string::npos);
  EXPECT_NE(build_page.find("<span class=\"ansi-32\">green-ok</span>"), std::string::npos);
  EXPECT_NE(build_page.find("class=\"group\""), std::string::npos) << build_page;
  EXPECT_NE(build_page.find("flag-O2"), std::string::npos);
  EXPECT_NE(build_page.find("href=\"#L1\""), std::string::npos);

  // The login page as a person sees it: a password field and the way back.
  const std::string login_page = dump_dom(agent_url() + "/login?next=%2Fruns%2F" + std::to_string(run), 2000);
  EXPECT_NE(login_page.find("type=\"password\" name=\"token\""), std::string::npos) << login_page;
  EXPECT_NE(login_page.find("name=\"next\" value=\"/runs/" + std::to_string(run) + "\""), std::string::npos);

  const fs::path shots = dir_.path() / "shots";
  fs::create_directories(shots);
  ASSERT_TRUE(screenshot(run_url, shots / "run_page.png"));
  ASSERT_TRUE(screenshot(build_log, shots / "log_page.png"));
  ASSERT_TRUE(screenshot(agent_url() + "/runs", shots / "runs_phone.png", 412, 800)) << "a phone's width";
  if (const char* keep = std::getenv("SANDCI_SCREENSHOT_DIR")) {
    for (const char* name : {"run_page.png", "log_page.png", "runs_phone.png"})
      fs::copy_file(shots / name, fs::path(keep) / name, fs::copy_options::overwrite_existing);
  }
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
