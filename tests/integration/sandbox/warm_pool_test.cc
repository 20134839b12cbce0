// Warm sandboxes (sandbox/warm_pool.h) over real runsc: each is handed out once,
// a job never sees what another job did, and nothing is left once the pool goes.
#include <gmock/gmock.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/process.h"
#include "sandbox/warm_pool.h"

namespace sandci::sandbox::testing {
namespace {

using ::testing::HasSubstr;

class WarmPoolTest : public SandboxTest {};

TEST_F(WarmPoolTest, TheSecondJobOfASpecGetsASandboxStartedAheadThatNoJobUsedBefore) {
  WarmPool pool(backend(), 1);
  SandboxSpec spec = default_spec();
  spec.name_hint = "first";
  std::string first_id;
  {
    auto first = pool.create(spec);
    ASSERT_TRUE(first.has_value()) << first.error().message;
    first_id = (*first)->id();
    // The first job of a spec starts cold, and it leaves a mark in its sandbox.
    EXPECT_GT((*first)->start_timings().start.count(), 0);
    ASSERT_TRUE(sh(**first, "echo secret > /tmp/mark && echo secret > /workspace/mark").status.success());
  }
  pool.wait_idle();
  ASSERT_EQ(pool.idle(), 1u) << "one sandbox of this spec is started ahead";

  spec.name_hint = "second";  // the name is no part of the spec's identity
  auto second = pool.create(spec);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_NE((*second)->id(), first_id);
  EXPECT_EQ((*second)->start_timings().start.count(), 0) << "a warm sandbox: the job waited for no start";
  EXPECT_EQ(pool.idle(), 0u) << "handed out once: the pool no longer holds it";
  auto seen = sh(**second, "cat /tmp/mark /workspace/mark 2>&1; uname -r");
  EXPECT_THAT(seen.out(), HasSubstr("No such file")) << seen.out();
  EXPECT_THAT(seen.out(), ::testing::Not(HasSubstr("secret")));
  EXPECT_THAT(seen.out(), HasSubstr("4.4.0")) << "still gVisor";
}

TEST_F(WarmPoolTest, ASpecWithOtherMountsIsNeverServedFromAnotherSpecsSandboxes) {
  WarmPool pool(backend(), 1);
  SandboxSpec spec = default_spec();
  ASSERT_TRUE(pool.create(spec).has_value());
  pool.wait_idle();
  ASSERT_EQ(pool.idle(), 1u);

  TempDir other;
  write_host_file(other.path().string() + "/only-here", "x");
  SandboxSpec with_mount = spec;
  with_mount.mounts.push_back({other.path(), "/extra", true});
  auto box = pool.create(with_mount);
  ASSERT_TRUE(box.has_value()) << box.error().message;
  EXPECT_GT((*box)->start_timings().start.count(), 0) << "started cold, with its own mounts";
  EXPECT_TRUE(sh(**box, "test -f /extra/only-here").status.success());
  pool.wait_idle();
  EXPECT_EQ(pool.idle(), 2u) << "the first spec's warm sandbox still waits for its own job, beside one of the new spec";
}

// This process's warm sandboxes only: other test programs (ctest -j) and
// `sandci run --warm` start sandboxes named "warm" on the same host.
std::string own_warm_sandboxes() { return "sandci-warm-" + std::to_string(::getpid()) + "-"; }

TEST_F(WarmPoolTest, SandboxesNobodyTookAreDestroyedWithThePool) {
  {
    WarmPool pool(backend(), 2);
    ASSERT_TRUE(pool.create(default_spec()).has_value());
    pool.wait_idle();
    EXPECT_EQ(pool.idle(), 2u);
    ASSERT_FALSE(host_processes_mentioning(own_warm_sandboxes()).empty()) << "the warm sandboxes run";
  }
  // Destroyed means gone from the host, not only from runsc's state.
  EXPECT_TRUE(host_processes_mentioning(own_warm_sandboxes()).empty());
}

// Tells when creates have begun, so a test can act while starts are under way.
class BegunCounter final : public SandboxBackend {
 public:
  explicit BegunCounter(SandboxBackend& inner) : inner_(inner) {}
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override {
    {
      std::lock_guard lock(mutex_);
      ++begun_;
      changed_.notify_all();
    }
    return inner_.create(spec);
  }
  void wait_begun(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return begun_ >= n; });
  }

 private:
  SandboxBackend& inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int begun_ = 0;
};

TEST_F(WarmPoolTest, StartsStillUnderWayWhenThePoolGoesAreWaitedForAndDestroyed) {
  BegunCounter counter(backend());
  {
    WarmPool pool(counter, 2, 2);
    pool.expect(default_spec(), 2);
    counter.wait_begun(2);  // both starts are under way; nobody takes them
  }
  EXPECT_TRUE(host_processes_mentioning(own_warm_sandboxes()).empty());
  auto listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
  ASSERT_TRUE(listed && listed->ok());
  EXPECT_EQ(listed->out.find("sandci-warm-"), std::string::npos) << listed->out;
}

TEST_F(WarmPoolTest, SizeZeroIsAPassThrough) {
  WarmPool pool(backend(), 0);
  auto box = pool.create(default_spec());
  ASSERT_TRUE(box.has_value()) << box.error().message;
  EXPECT_GT((*box)->start_timings().start.count(), 0);
  pool.wait_idle();
  EXPECT_EQ(pool.idle(), 0u);
}

}  // namespace
}  // namespace sandci::sandbox::testing
