// Sandboxes started ahead (sandbox.warm: the plan-aware warm pool, and the
// first job's sandbox started while the checkout is written) hold one of the
// agent's slots: with them on, no more sandboxes exist at once than
// `capacity`, through runs side by side (they compete for slots, and a warm
// one gives its slot back to a waiting job) and a run alone (they start). Every
// run ends green and nothing is left behind.
#include <atomic>
#include <mutex>
#include <thread>

#include "e2e/agent/server/e2e_server_support.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class WarmCapacityTest : public E2eServerTest {};

constexpr int kCapacity = 2;

// Sandboxes seen from outside the agent, every 10 ms: the bundle folders under
// <state>/sandbox/bundles (each named after its sandbox: "sandci-warm-..." for
// the pool's, "sandci-first-..." for a first job's started during checkout).
class BundleSampler {
 public:
  explicit BundleSampler(fs::path bundles) : bundles_(std::move(bundles)), thread_([this] { sample(); }) {}
  ~BundleSampler() {
    stop_ = true;
    thread_.join();
  }
  int most() const { return most_; }
  bool saw(const std::string& hint) const {
    std::lock_guard lock(mutex_);
    return hints_.count(hint) > 0;
  }

 private:
  void sample() {
    while (!stop_) {
      int now = 0;
      std::error_code ec;
      for (fs::directory_iterator it(bundles_, ec), end; !ec && it != end; it.increment(ec)) {
        ++now;
        const std::string name = it->path().filename().string();
        std::lock_guard lock(mutex_);
        for (const char* hint : {"sandci-warm-", "sandci-first-"})
          if (name.rfind(hint, 0) == 0) hints_.insert(hint);
      }
      most_ = std::max(most_.load(), now);
      std::this_thread::sleep_for(10ms);
    }
  }

  fs::path bundles_;
  std::atomic<bool> stop_{false};
  std::atomic<int> most_{0};
  mutable std::mutex mutex_;
  std::set<std::string> hints_;
  std::thread thread_;
};

TEST_F(WarmCapacityTest, SandboxesStartedAheadNeverPassTheCapacity) {
  TestForge forge;
  const std::vector<std::string> repos = {"acme/api", "acme/web"};
  for (const auto& name : repos) add_repo(name, ForgeKind::github, {{".github/workflows/ci.yml", kMatrixDiamond}});
  write_e2e_config(forge, kCapacity, "sandbox:\n  warm: 2\n");
  start_e2e_agent();
  BundleSampler bundles(state() / "sandbox" / "bundles");

  std::vector<std::pair<Push, std::int64_t>> sent;
  auto push_all = [&](const std::vector<std::string>& names, int round) {
    for (const auto& name : names) {
      Push push = round == 0 ? Push{name, "main", first_sha_[name], std::string(40, '0')}
                             : push_commit(name, {{"change.txt", std::to_string(round) + "\n"}},
                                           "change " + std::to_string(round));
      auto accepted = send_push(push);
      ASSERT_EQ(accepted.status, 202) << name << ": " << accepted.body;
      sent.push_back({push, run_id_of(accepted)});
    }
  };
  auto all_finished = [&] {
    for (const auto& [push, run] : sent)
      if (!run_finished(run)) return false;
    return true;
  };
  // Two runs side by side, twice (the second time with mirrors, so each run's
  // first sandbox starts during its checkout), then one run alone.
  push_all(repos, 0);
  ASSERT_TRUE(eventually(all_finished, 600s)) << slurp(log_file());
  push_all(repos, 1);
  ASSERT_TRUE(eventually(all_finished, 600s)) << slurp(log_file());
  push_all({repos.front()}, 2);
  ASSERT_TRUE(eventually(all_finished, 600s)) << slurp(log_file());

  for (const auto& [push, run] : sent) {
    SCOPED_TRACE(push.repo + " " + push.sha);
    EXPECT_EQ(run_state(run), "success") << run_json(run).dump();
  }
  // Started ahead they were (the lone run had free slots), and never one too many.
  // Which kind is timing: on a quiet machine the matrix jobs take the free slots
  // before the pool can start one, and only the first jobs' sandboxes (started
  // during the checkouts, holding a slot each) are started ahead.
  EXPECT_TRUE(bundles.saw("sandci-first-")) << "no first job's sandbox was started during a checkout: the test "
                                                "proves nothing";
  EXPECT_GE(bundles.most(), 2);
  EXPECT_LE(bundles.most(), kCapacity);

  EXPECT_EQ(agent_.terminate(), 0);
  expect_nothing_left_behind();
}

}  // namespace
}  // namespace sandci::agent::testing
