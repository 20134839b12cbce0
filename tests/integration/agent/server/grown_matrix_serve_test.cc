// `sandci serve` running a matrix computed from a needed job's outputs: each job
// the run adds gets its own commit status (pending, then final) and its row on
// the run's page, as planned jobs do.
#include <gtest/gtest.h>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class GrownMatrixServeTest : public AgentTest {};

const char* kWorkflow = R"(name: ci
on: push
jobs:
  setup:
    runs-on: linux
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix={"os":["a","b"],"include":[{"os":"c","extra":1}]}' >> "$GITHUB_OUTPUT"
  test:
    needs: setup
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    runs-on: linux
    steps:
      - run: echo "on ${{ matrix.os }}"
  report:
    needs: test
    runs-on: linux
    steps: [{run: echo done}]
)";

TEST_F(GrownMatrixServeTest, EachGrownJobGetsAStatusAndARow) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kWorkflow}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "g-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  ASSERT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 60s));

  const auto seen = seen_statuses(forge.delivered());
  for (const std::string job : {"setup", "test (matrix)", "test (a)", "test (b)", "test (c, 1)", "report"}) {
    auto states = states_of(seen, "sandci/ci/" + job);
    ASSERT_FALSE(states.empty()) << job;
    EXPECT_EQ(states.front(), "pending") << job;
    EXPECT_EQ(states.back(), "success") << job;
  }
  EXPECT_EQ(states_of(seen, "sandci/ci").back(), "success");

  auto page = get("/runs/" + std::to_string(run));
  EXPECT_EQ(page.status, 200);
  for (const std::string job : {"test (a)", "test (b)", "test (c, 1)", "report"})
    EXPECT_NE(page.body.find(">" + job + "<"), std::string::npos) << job << "\n" << page.body;
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
