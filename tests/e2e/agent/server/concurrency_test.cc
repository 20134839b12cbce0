// Many pushes at once (label heavy): 5 repositories x 4 pushes in quick
// succession, each workflow a diamond with a matrix, through the real agent.
// Every run completes or is cancelled by a newer push of its branch, no push is
// lost, the capacity is never exceeded, and once the agent has stopped no
// sandbox, mount, cgroup, temp file or workspace is left behind.
//
// Already proven elsewhere: one newer push superseding one older run
// (integration ServeTest.NewerPushSupersedesTheOlderRun), a concurrency group
// serialising two runs (ServeTest.ConcurrencyGroupSerialisesRuns), the job
// slots' limit with a fake runner (unit tests of the executor and JobSlots).
#include <thread>

#include "e2e/agent/server/e2e_server_support.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class ConcurrencyHeavyTest : public E2eServerTest {};

constexpr int kCapacity = 3;
constexpr int kPushesPerRepo = 4;

// The most jobs that ran at once, from the store's start and end times of every
// job (half-open intervals: one ending as another starts is not an overlap).
int most_jobs_at_once(const std::vector<json>& runs) {
  std::vector<std::pair<std::int64_t, int>> edges;
  for (const auto& run : runs)
    for (const auto& job : run["jobs"]) {
      const std::int64_t start = job["started_ms"], end = job["finished_ms"];
      if (start <= 0 || end <= start) continue;  // never ran, or skipped
      edges.push_back({start, +1});
      edges.push_back({end, -1});
    }
  std::sort(edges.begin(), edges.end());  // at equal times the end (-1) comes first
  int now = 0, most = 0;
  for (const auto& [at, delta] : edges) most = std::max(most, now += delta);
  return most;
}

// A value of the agent's /metrics text, or -1.
double metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST_F(ConcurrencyHeavyTest, FiveRepositoriesFourPushesEachNothingLostCapacityKept) {
  TestForge forge;
  const std::vector<std::pair<std::string, ForgeKind>> repos = {{"acme/api", ForgeKind::github},
                                                                {"acme/web", ForgeKind::github},
                                                                {"acme/cli", ForgeKind::gitea},
                                                                {"acme/docs", ForgeKind::forgejo},
                                                                {"acme/infra", ForgeKind::github}};
  for (const auto& [name, kind] : repos) add_repo(name, kind, {{".github/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge, kCapacity);
  start_e2e_agent();

  // Round after round, every repository gets a push and its webhook at once.
  struct Sent {
    Push push;
    std::int64_t run = -1;
    bool newest = false;  // the last push of its branch
  };
  std::vector<Sent> sent;
  for (int round = 0; round < kPushesPerRepo; ++round) {
    for (const auto& [name, kind] : repos) {
      Push push = round == 0 ? Push{name, "main", first_sha_[name], std::string(40, '0')}
                             : push_commit(name, {{"change.txt", std::to_string(round) + "\n"}},
                                           "change " + std::to_string(round));
      auto accepted = send_push(push);
      ASSERT_EQ(accepted.status, 202) << name << ": " << accepted.body;
      sent.push_back({push, run_id_of(accepted), round == kPushesPerRepo - 1});
    }
  }

  // While it works: the agent's own gauges never pass the capacity.
  double most_running = 0, most_sandboxes = 0;
  auto all_finished = [&] {
    const std::string text = get("/metrics").body;
    most_running = std::max(most_running, metric(text, "sandci_jobs_running"));
    most_sandboxes = std::max(most_sandboxes, metric(text, "sandci_sandboxes_alive"));
    for (const auto& s : sent)
      if (!run_finished(s.run)) return false;
    return true;
  };
  ASSERT_TRUE(eventually(all_finished, 600s)) << slurp(log_file());

  std::set<std::int64_t> ids;
  std::vector<json> runs;
  for (const auto& s : sent) {
    SCOPED_TRACE(s.push.repo + " " + s.push.sha);
    EXPECT_TRUE(ids.insert(s.run).second) << "two pushes share a run";
    const json run = run_json(s.run);
    ASSERT_TRUE(run.is_object());
    runs.push_back(run);
    EXPECT_EQ(run["sha"], s.push.sha);
    const std::string state = run["state"];
    if (s.newest) {
      EXPECT_EQ(state, "success") << run.dump();
    } else {
      EXPECT_TRUE(state == "success" || state == "cancelled") << run.dump();
      if (state == "cancelled") {
        EXPECT_NE(run["message"].get<std::string>().find("superseded by run"), std::string::npos) << run.dump();
      }
    }
  }

  // Nothing lost: every commit that got a status ends with final ones (none
  // left pending), a superseded run's say error, and every branch's newest
  // commit shows the whole diamond green, linking to its run.
  for (const auto& s : sent) {
    SCOPED_TRACE(s.push.repo + " " + s.push.sha);
    const std::string state = run_state(s.run);
    if (s.newest || state == "success") {
      ASSERT_TRUE(eventually([&] { return all_final(forge, s.push.sha, matrix_diamond_contexts()); }, 120s));
      expect_push_statuses(forge, s.push, matrix_diamond_contexts(), "success",
                           agent_url() + "/runs/" + std::to_string(s.run));
      continue;
    }
    // Cancelled: superseded while queued, it posted nothing; while running, every
    // context it posted ends final, the workflow's in error.
    ASSERT_TRUE(eventually([&] {
      for (const auto& [context, last] : final_states(forge, s.push.sha))
        if (last == "pending" || last == "running") return false;
      return true;
    }, 120s)) << ::testing::PrintToString(final_states(forge, s.push.sha));
    const auto last = final_states(forge, s.push.sha);
    if (!last.empty()) {
      ASSERT_TRUE(last.count("sandci/ci"));
      EXPECT_EQ(last.at("sandci/ci"), "error");
    }
    for (const auto& status : statuses_of(forge, s.push.sha))
      EXPECT_EQ(status.target_url, agent_url() + "/runs/" + std::to_string(s.run));
  }
  EXPECT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 120s));

  // The capacity, from the store's job times and from what the agent showed.
  const int most = most_jobs_at_once(runs);
  EXPECT_GE(most, 2) << "the runs overlapped: the test did load the agent";
  EXPECT_LE(most, kCapacity);
  EXPECT_LE(most_running, kCapacity);
  EXPECT_LE(most_sandboxes, kCapacity);

  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
