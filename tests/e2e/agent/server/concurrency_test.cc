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
#include <atomic>
#include <thread>

#include "e2e/agent/server/e2e_server_support.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class ConcurrencyHeavyTest : public E2eServerTest {};

constexpr int kCapacity = 3;
constexpr int kPushesPerRepo = 4;

// The most sandboxes that existed at once, seen from outside the agent: the
// bundle folders under <state>/sandbox/bundles, counted every 10 ms. A job
// takes its slot before its bundle is written and frees it once the bundle is
// removed, so this count never passes the capacity while the agent keeps it.
// (The store's job start times are no measure of it: a job's started_ms is
// stamped when the executor dispatches it, before it waits for a slot.)
class SandboxCounter {
 public:
  explicit SandboxCounter(fs::path bundles) : bundles_(std::move(bundles)), thread_([this] { sample(); }) {}
  ~SandboxCounter() {
    stop_ = true;
    thread_.join();
  }
  int most() const { return most_; }

 private:
  void sample() {
    while (!stop_) {
      int now = 0;
      std::error_code ec;
      for (fs::directory_iterator it(bundles_, ec), end; !ec && it != end; it.increment(ec)) ++now;
      most_ = std::max(most_.load(), now);
      std::this_thread::sleep_for(10ms);
    }
  }

  fs::path bundles_;
  std::atomic<bool> stop_{false};
  std::atomic<int> most_{0};
  std::thread thread_;
};

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
  SandboxCounter sandboxes(state() / "sandbox" / "bundles");

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
  for (const auto& s : sent) {
    SCOPED_TRACE(s.push.repo + " " + s.push.sha);
    EXPECT_TRUE(ids.insert(s.run).second) << "two pushes share a run";
    const json run = run_json(s.run);
    ASSERT_TRUE(run.is_object());
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
      ASSERT_TRUE(eventually([&] { return all_final(forge, s.push, matrix_diamond_contexts()); }, 120s));
      expect_push_statuses(forge, s.push, matrix_diamond_contexts(), "success",
                           agent_url() + "/runs/" + std::to_string(s.run));
      continue;
    }
    // Cancelled: superseded while queued, it posted nothing; while running, every
    // context it posted ends final, the workflow's in error.
    ASSERT_TRUE(eventually([&] {
      for (const auto& [context, last] : final_states(forge, s.push))
        if (last == "pending" || last == "running") return false;
      return true;
    }, 120s)) << ::testing::PrintToString(final_states(forge, s.push));
    const auto last = final_states(forge, s.push);
    if (!last.empty()) {
      ASSERT_TRUE(last.count("sandci/ci"));
      EXPECT_EQ(last.at("sandci/ci"), "error");
    }
    for (const auto& status : statuses_of(forge, s.push))
      EXPECT_EQ(status.target_url, agent_url() + "/runs/" + std::to_string(s.run));
  }
  EXPECT_TRUE(eventually([&] { return json::parse(get("/healthz").body)["statuses_pending"] == 0; }, 120s));

  // The capacity, as the sandboxes on disk and the agent's own gauges showed it.
  EXPECT_GE(sandboxes.most(), 2) << "the runs overlapped: the test did load the agent";
  EXPECT_LE(sandboxes.most(), kCapacity);
  EXPECT_LE(most_running, kCapacity);
  EXPECT_LE(most_sandboxes, kCapacity);

  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
