// Push to status from nothing: a fresh state folder (no mirror, no run, no
// database), the default image as scripts/test-setup.sh left it, a git daemon on
// 127.0.0.1 that takes `git push`, `sandci serve` as a real process, and one
// repository per forge. Each push goes out with `git push`, its webhook signed
// as that forge signs it; the forge gets its statuses in order on the pushed
// SHA with the run page as target_url, and the page and the job logs answer.
//
// Already proven elsewhere, not repeated here: each forge's status API shape
// alone (integration ServeTest.GithubPushRunsTheDiamondAndPostsStatuses,
// GitlabPushPostsGitlabStatuses, GiteaPushOverHttpsForge, with make_repo's
// local pushes and a daemon the agent only fetches from); signature refusals
// (ServeTest.BadDeliveriesGetClearAnswersAndStartNothing, unit forge tests).
#include <cctype>

#include "e2e/agent/server/e2e_server_support.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class FromNothingTest : public E2eServerTest {};

// A smaller workflow for the forges that only need to show their own shape again.
const char* kBuildAndCheck = R"(name: build
on: [push]
jobs:
  compile:
    runs-on: linux
    steps:
      - run: echo "compiling $GITHUB_REPOSITORY at $GITHUB_SHA"
  check:
    needs: compile
    runs-on: linux
    steps:
      - run: echo check-passed
)";

TEST_F(FromNothingTest, PushesToEveryForgeGetStatusesPagesAndLogs) {
  // The default image is what scripts/test-setup.sh builds; this test only uses it.
  ASSERT_TRUE(fs::exists(shared_images_dir() / "debian%3A12" / "rootfs" / "bin" / "sh"))
      << "the default image is missing: run scripts/test-setup.sh";
  std::vector<std::string> in_state;
  for (const auto& entry : fs::directory_iterator(state())) in_state.push_back(entry.path().filename().string());
  ASSERT_EQ(in_state, std::vector<std::string>{"images"}) << "the state folder starts empty but for the images";

  TestForge forge;
  add_repo("alice/web", ForgeKind::github, {{".github/workflows/ci.yml", kMatrixDiamond}, {"README", "web\n"}});
  add_repo("bob/lib", ForgeKind::gitea, {{".gitea/workflows/build.yml", kBuildAndCheck}});
  add_repo("carol/tool", ForgeKind::forgejo, {{".forgejo/workflows/build.yml", kBuildAndCheck}});
  add_repo("team/app", ForgeKind::gitlab, {{".github/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge);
  start_e2e_agent();

  const std::vector<std::string> build_contexts = {"sandci/build", "sandci/build/compile", "sandci/build/check"};
  struct Case {
    Push push;
    std::vector<std::string> contexts;
    std::int64_t run = -1;
  };
  std::vector<Case> cases;
  // The first push of each repository (its branch created), then a second push
  // of the GitHub one to a new branch, from its own work clone.
  for (const auto& [name, contexts] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"alice/web", matrix_diamond_contexts()},
           {"bob/lib", build_contexts},
           {"carol/tool", build_contexts},
           {"team/app", matrix_diamond_contexts()}}) {
    cases.push_back({Push{name, "main", first_sha_[name], std::string(40, '0')}, contexts});
  }
  for (auto& c : cases) {
    auto accepted = send_push(c.push);
    ASSERT_EQ(accepted.status, 202) << c.push.repo << ": " << accepted.body;
    c.run = run_id_of(accepted);
    ASSERT_GT(c.run, 0);
  }
  cases.push_back({push_commit("alice/web", {{"src/page.html", "<p>hello</p>\n"}}, "add a page", "feature/page"),
                   matrix_diamond_contexts()});
  {
    auto accepted = send_push(cases.back().push);
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    cases.back().run = run_id_of(accepted);
  }

  for (auto& c : cases) {
    SCOPED_TRACE(c.push.repo + " " + c.push.branch);
    ASSERT_TRUE(eventually([&] { return run_finished(c.run); }, 300s)) << slurp(log_file());
    EXPECT_EQ(run_state(c.run), "success");
    ASSERT_TRUE(eventually([&] { return all_final(forge, c.push, c.contexts); }, 120s));
    expect_push_statuses(forge, c.push, c.contexts, "success", agent_url() + "/runs/" + std::to_string(c.run));

    // The run as the API, the page and the raw logs show it.
    auto run = run_json(c.run);
    ASSERT_TRUE(run.is_object());
    EXPECT_EQ(run["sha"], c.push.sha);
    EXPECT_EQ(run["ref"], "refs/heads/" + c.push.branch);
    auto page = get("/runs/" + std::to_string(c.run));
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find(c.push.sha.substr(0, 12)), std::string::npos) << "the page names the commit";
    ASSERT_EQ(run["jobs"].size(), c.contexts.size() - 1) << run.dump();
    for (const auto& job : run["jobs"]) {
      const std::string key = job["key"].get<std::string>();
      EXPECT_EQ(job["state"], "success") << key;
      const std::string log_url = "/runs/" + std::to_string(c.run) + "/jobs/" + url_encode(key) + "/log";
      EXPECT_EQ(get(log_url).status, 200) << key << ": the log's page";
      auto log = get(log_url + "?raw=1");
      EXPECT_EQ(log.status, 200) << key;
      // What each job printed, with the values the expressions took.
      std::string expected;
      if (key.ends_with("test (b)")) expected = "test part b";
      if (key.ends_with("report")) expected = "report for refs/heads/" + c.push.branch;
      if (key.ends_with("compile")) expected = "compiling " + c.push.repo + " at " + c.push.sha;
      EXPECT_NE(log.body.find(expected), std::string::npos) << key << ": " << log.body;
    }
  }

  // Each forge's own API path and credential header.
  for (const auto& r : forge.requests()) {
    const std::string& t = r.target;
    if (t.rfind("/api/v3/", 0) == 0) {
      EXPECT_EQ(t.rfind("/api/v3/repos/alice/web/statuses/", 0), 0u) << t;
      EXPECT_EQ(r.headers.get("Authorization").value_or(""), std::string("Bearer ") + kApiToken);
    } else if (t.rfind("/api/v1/", 0) == 0) {
      EXPECT_TRUE(t.rfind("/api/v1/repos/bob/lib/statuses/", 0) == 0 ||
                  t.rfind("/api/v1/repos/carol/tool/statuses/", 0) == 0)
          << t;
      EXPECT_EQ(r.headers.get("Authorization").value_or(""), std::string("token ") + kApiToken);
    } else {
      EXPECT_EQ(t, "/api/v4/projects/" + std::to_string(repo_named("team/app").project_id) + "/statuses/" +
                       first_sha_["team/app"]);
      EXPECT_EQ(r.headers.get("PRIVATE-TOKEN").value_or(""), kApiToken);
    }
  }

  // The mirrors the agent made from nothing, and nothing left once it stops.
  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
