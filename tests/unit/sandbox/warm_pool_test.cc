// The warm pool's bookkeeping over a fake backend (the real-runsc side is in
// tests/integration/sandbox/warm_pool_test.cc): expected jobs bound what it
// starts, a job takes a start under way rather than starting another, and a
// start not yet begun is taken back by the job that asks first; a job waiting
// for a start that fails, never ends, or is cancelled is never left waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/warm_pool.h"

namespace sandci::sandbox {
namespace {

// Creates fake sandboxes named after who asked ("warm-1" for the pool, "cold-2"
// for a job); creates of a spec whose rootfs is `gated` wait until open() (only
// the pool's when gated with warm_only); the next create of a rootfs given to
// fail_next() fails once it is let through.
class FakeBackend final : public SandboxBackend {
 public:
  std::expected<std::unique_ptr<Sandbox>, SandboxError> create(const SandboxSpec& spec) override {
    std::unique_lock lock(mutex_);
    const int n = ++creates_;
    ++under_way_;
    changed_.notify_all();
    const bool warm = spec.name_hint == "warm";
    changed_.wait(lock, [&] { return open_ || spec.rootfs != gated_ || (warm_only_ && !warm); });
    --under_way_;
    if (!fail_next_.empty() && spec.rootfs == fail_next_) {
      fail_next_.clear();
      return std::unexpected(SandboxError{"fake start failed"});
    }
    ++alive_;
    return std::unique_ptr<Sandbox>(
        std::make_unique<Box>(*this, (spec.name_hint == "warm" ? "warm-" : "cold-") + std::to_string(n)));
  }
  void gate(std::string rootfs, bool warm_only = false) {
    std::lock_guard lock(mutex_);
    gated_ = std::move(rootfs);
    open_ = false;
    warm_only_ = warm_only;
  }
  void fail_next(std::string rootfs) {
    std::lock_guard lock(mutex_);
    fail_next_ = std::move(rootfs);
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void wait_under_way(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return under_way_ >= n; });
  }
  int creates() const {
    std::lock_guard lock(mutex_);
    return creates_;
  }
  int alive() const {
    std::lock_guard lock(mutex_);
    return alive_;
  }

 private:
  class Box final : public Sandbox {
   public:
    Box(FakeBackend& backend, std::string id) : backend_(backend), id_(std::move(id)) {}
    ~Box() override {
      std::lock_guard lock(backend_.mutex_);
      --backend_.alive_;
    }
    const std::string& id() const override { return id_; }
    ExitStatus exec(const ExecRequest&, const LineCallback&) override { return {}; }
    ExitStatus exec(const ExecRequest&, const LineCallback&, ExecIo&) override { return {}; }
    std::expected<void, SandboxError> write_file(const std::string&, const std::string&, int) override { return {}; }
    std::expected<std::string, SandboxError> read_file(const std::string&, std::uint64_t) override {
      return std::string();
    }
    std::expected<void, SandboxError> copy_out(const std::vector<std::string>&, const std::string&) override {
      return {};
    }
    std::expected<void, SandboxError> copy_in(const std::string&, const std::string&) override { return {}; }
    void kill() override {}

   private:
    FakeBackend& backend_;
    std::string id_;
  };

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int creates_ = 0, under_way_ = 0, alive_ = 0;
  std::string gated_, fail_next_;
  bool open_ = true, warm_only_ = false;
};

SandboxSpec spec_of(const std::string& rootfs) {
  SandboxSpec spec;
  spec.rootfs = rootfs;
  spec.mounts.push_back({"/srv/checkout", "/workspace", false});
  return spec;
}

TEST(WarmPoolBookkeepingTest, ExpectedJobsStartAtOnceAndNothingBeyondThem) {
  FakeBackend backend;
  {
    WarmPool pool(backend, 3, 2);
    pool.expect(spec_of("/img/a"), 2);
    pool.wait_idle();
    EXPECT_EQ(pool.started(), 2u) << "two jobs expected: two started, not per_spec's three";
    for (int job = 0; job < 2; ++job) {
      auto box = pool.create(spec_of("/img/a"));
      ASSERT_TRUE(box.has_value());
      EXPECT_EQ((*box)->id().rfind("warm-", 0), 0u) << (*box)->id();
    }
    pool.wait_idle();
    EXPECT_EQ(pool.started(), 2u) << "no job is expected any more: nothing more is started";
    EXPECT_EQ(pool.idle(), 0u);
    EXPECT_EQ(backend.creates(), 2);
  }
  EXPECT_EQ(backend.alive(), 0);
}

TEST(WarmPoolBookkeepingTest, WithoutAnExpectationASpecIsLearntFromItsFirstJob) {
  FakeBackend backend;
  WarmPool pool(backend, 1, 2);
  auto first = pool.create(spec_of("/img/a"));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)->id().rfind("cold-", 0), 0u) << (*first)->id();
  pool.wait_idle();
  EXPECT_EQ(pool.idle(), 1u);
  auto second = pool.create(spec_of("/img/a"));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*second)->id().rfind("warm-", 0), 0u) << (*second)->id();
}

TEST(WarmPoolBookkeepingTest, AJobTakesTheStartUnderWayInsteadOfStartingAnother) {
  FakeBackend backend;
  backend.gate("/img/a");
  WarmPool pool(backend, 2, 2);
  pool.expect(spec_of("/img/a"), 1);
  backend.wait_under_way(1);
  std::string id;
  std::thread job([&] {
    auto box = pool.create(spec_of("/img/a"));
    if (box) id = (*box)->id();
  });
  backend.open();
  job.join();
  EXPECT_EQ(id.rfind("warm-", 0), 0u) << id;
  pool.wait_idle();
  EXPECT_EQ(backend.creates(), 1) << "one job expected, one sandbox started in all";
}

TEST(WarmPoolBookkeepingTest, AStartNotBegunIsTakenBackByTheJobThatAsksFirst) {
  FakeBackend backend;
  backend.gate("/img/slow");
  WarmPool pool(backend, 1, 1);  // one start at a time: the slow one holds it
  pool.expect(spec_of("/img/slow"), 1);
  backend.wait_under_way(1);
  pool.expect(spec_of("/img/b"), 1);  // queued behind the slow start
  auto box = pool.create(spec_of("/img/b"));
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ((*box)->id().rfind("cold-", 0), 0u) << "started by the job itself: " << (*box)->id();
  backend.open();
  pool.wait_idle();
  EXPECT_EQ(pool.started(), 1u) << "only the slow spec's start ran in the background";
  EXPECT_EQ(backend.creates(), 2);
}

TEST(WarmPoolBookkeepingTest, AJobWaitingForAStartThatFailsStartsItsOwn) {
  FakeBackend backend;
  backend.gate("/img/a");
  backend.fail_next("/img/a");
  WarmPool pool(backend, 1, 2);
  pool.expect(spec_of("/img/a"), 1);
  backend.wait_under_way(1);
  std::expected<std::unique_ptr<Sandbox>, SandboxError> box = std::unexpected(SandboxError{"not asked"});
  std::thread job([&] { box = pool.create(spec_of("/img/a")); });
  backend.open();  // the background start fails now (the job waits for it, or finds it failed)
  job.join();
  ASSERT_TRUE(box.has_value()) << box.error().message;
  EXPECT_EQ((*box)->id(), "cold-2") << "the job started its own after the failed start";
}

TEST(WarmPoolBookkeepingTest, AJobWaitsForAStartThatNeverEndsNoLongerThanTheBound) {
  FakeBackend backend;
  backend.gate("/img/a", /*warm_only=*/true);  // the pool's start hangs; a job's own does not
  {
    WarmPool pool(backend, 1, 2, {}, std::chrono::milliseconds(50));
    pool.expect(spec_of("/img/a"), 1);
    backend.wait_under_way(1);
    auto box = pool.create(spec_of("/img/a"));
    ASSERT_TRUE(box.has_value()) << box.error().message;
    EXPECT_EQ((*box)->id(), "cold-2") << "the job gave up on the hung start and started its own";
    EXPECT_EQ(pool.started(), 0u) << "the background start is still under way";
    backend.open();  // the pool's destruction waits for its start under way
  }
  EXPECT_EQ(backend.alive(), 0) << "the late start went with the pool";
}

TEST(WarmPoolBookkeepingTest, ACancelledJobStopsWaitingForAStartAndStartsNothing) {
  FakeBackend backend;
  backend.gate("/img/a", /*warm_only=*/true);
  WarmPool pool(backend, 1, 2);  // the default bound: minutes
  pool.expect(spec_of("/img/a"), 1);
  backend.wait_under_way(1);
  std::atomic<bool> cancelled{false};
  std::expected<std::unique_ptr<Sandbox>, SandboxError> box = std::unexpected(SandboxError{"not asked"});
  std::thread job([&] { box = pool.create(spec_of("/img/a"), cancelled); });
  cancelled = true;
  job.join();
  ASSERT_FALSE(box.has_value());
  EXPECT_NE(box.error().message.find("cancelled"), std::string::npos) << box.error().message;
  EXPECT_EQ(backend.creates(), 1) << "no start for a cancelled job";
  backend.open();
}

TEST(WarmPoolBookkeepingTest, SandboxesNobodyTookGoWithThePool) {
  FakeBackend backend;
  {
    WarmPool pool(backend, 2, 2);
    pool.expect(spec_of("/img/a"), 5);
    pool.wait_idle();
    EXPECT_EQ(pool.idle(), 2u) << "at most per_spec ahead";
    EXPECT_EQ(backend.alive(), 2);
  }
  EXPECT_EQ(backend.alive(), 0);
}

TEST(WarmPoolBookkeepingTest, SizeZeroStartsNothing) {
  FakeBackend backend;
  WarmPool pool(backend, 0);
  pool.expect(spec_of("/img/a"), 3);
  auto box = pool.create(spec_of("/img/a"));
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ(backend.creates(), 1);
  EXPECT_EQ(pool.started(), 0u);
}

// A job with its own network namespace (egress) owns that namespace alone: a
// sandbox started ahead in it would take the job's network interface, and the
// job's own sandbox would find none.
TEST(WarmPoolBookkeepingTest, AJobWithItsOwnNetworkNamespaceIsNeverStartedAhead) {
  FakeBackend backend;
  WarmPool pool(backend, 2, 2);
  SandboxSpec spec = spec_of("/img/a");
  spec.network_namespace = "/run/netns/sandci-net-1-1-job";
  pool.expect(spec, 3);
  pool.wait_idle();
  EXPECT_EQ(pool.started(), 0u);
  auto box = pool.create(spec);
  ASSERT_TRUE(box.has_value());
  EXPECT_EQ((*box)->id().rfind("cold-", 0), 0u) << (*box)->id();
  pool.wait_idle();
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_EQ(backend.creates(), 1);
}

}  // namespace
}  // namespace sandci::sandbox
