// `sandci serve` with a repository where one workflow cannot run (a reusable
// workflow of another repository that cannot be fetched): that workflow fails on
// its own, with its error in its commit status and on the run's page, while the
// repository's other workflow runs and reports as usual.
#include <gtest/gtest.h>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class BrokenWorkflowServeTest : public AgentTest {};

const char* kBuild = R"(name: build
on: push
jobs:
  compile:
    runs-on: linux
    steps:
      - run: echo compile-ran
)";

// The called repository is on no server the agent can reach.
const char* kFuzz = R"(name: fuzz
on: push
jobs:
  fuzz:
    uses: nosuch-org/fuzzing/.github/workflows/fuzz.yml@v3
)";

TEST_F(BrokenWorkflowServeTest, TheGoodWorkflowRunsAndTheBrokenOneFailsWithItsError) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/build.yml", kBuild},
                                                    {".github/workflows/fuzz.yml", kFuzz}});
  // Remote actions come from a folder that holds none.
  write_config(forge, {{}}, "actions:\n  source: " + (dir_.path() / "no-actions").string() + "\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "b-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "failure");
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));

  const auto seen = seen_statuses(forge.delivered());
  EXPECT_EQ(states_of(seen, "sandci/build/compile").back(), "success");
  EXPECT_EQ(states_of(seen, "sandci/build").back(), "success");
  const auto fuzz = states_of(seen, "sandci/fuzz");
  ASSERT_FALSE(fuzz.empty());
  EXPECT_EQ(fuzz.back(), "failure");
  std::string described;
  for (const auto& status : seen)
    if (status.context == "sandci/fuzz") described = status.description;
  EXPECT_NE(described.find(".github/workflows/fuzz.yml:5"), std::string::npos) << described;
  EXPECT_TRUE(states_of(seen, "sandci").empty()) << "no run-level failure: the good workflow ran";

  auto api = json::parse(get("/api/runs/" + std::to_string(run)).body, nullptr, false);
  ASSERT_TRUE(api.is_object());
  EXPECT_NE(api.value("message", "").find(".github/workflows/fuzz.yml:5"), std::string::npos) << api.dump();
  auto page = get("/runs/" + std::to_string(run));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("fuzz.yml:5"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find(">compile<"), std::string::npos) << page.body;
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
