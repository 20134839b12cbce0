// The first job's sandbox started before its checkout is written
// (PrestartedSandbox), on real runsc: the job takes it and still sees the whole
// checkout, written after the sandbox started, and cannot change the host's
// copy; a job of another spec starts its own and the unused one is destroyed;
// a job waiting for the slot it holds gets it.
#include "agent/runner/prestarted_sandbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "integration/agent/runner/runsc_run_fixture.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using namespace runsc_run;
using namespace std::chrono_literals;

// Counts the sandboxes that exist (created and not yet destroyed).
class CountingBackend final : public sandbox::SandboxBackend {
 public:
  explicit CountingBackend(sandbox::SandboxBackend& inner) : inner_(inner) {}
  std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> create(
      const sandbox::SandboxSpec& spec) override {
    const auto began = std::chrono::steady_clock::now();
    auto created = inner_.create(spec);
    {
      std::lock_guard lock(mutex_);
      creates_[spec.name_hint] = {began, std::chrono::steady_clock::now()};
    }
    if (!created) return created;
    ++created_;
    return std::unique_ptr<sandbox::Sandbox>(std::make_unique<Counted>(std::move(*created), alive_));
  }
  int alive() const { return alive_; }
  int created() const { return created_; }
  // When the inner create of the sandbox of this name_hint began and ended.
  std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::time_point> create_of(
      const std::string& hint) {
    std::lock_guard lock(mutex_);
    return creates_[hint];
  }

 private:
  class Counted final : public sandbox::Sandbox {
   public:
    Counted(std::unique_ptr<sandbox::Sandbox> inner, std::atomic<int>& alive) : inner_(std::move(inner)), alive_(alive) {
      ++alive_;
    }
    ~Counted() override {
      inner_.reset();
      --alive_;
    }
    const std::string& id() const override { return inner_->id(); }
    sandbox::StartTimings start_timings() const override { return inner_->start_timings(); }
    sandbox::ExitStatus exec(const sandbox::ExecRequest& r, const sandbox::LineCallback& on_line) override {
      return inner_->exec(r, on_line);
    }
    sandbox::ExitStatus exec(const sandbox::ExecRequest& r, const sandbox::LineCallback& on_line,
                             sandbox::ExecIo& io) override {
      return inner_->exec(r, on_line, io);
    }
    std::expected<void, sandbox::SandboxError> write_file(const std::string& p, const std::string& c, int m) override {
      return inner_->write_file(p, c, m);
    }
    std::expected<std::string, sandbox::SandboxError> read_file(const std::string& p, std::uint64_t n) override {
      return inner_->read_file(p, n);
    }
    std::expected<void, sandbox::SandboxError> copy_out(const std::vector<std::string>& p,
                                                        const std::string& d) override {
      return inner_->copy_out(p, d);
    }
    std::expected<void, sandbox::SandboxError> copy_in(const std::string& h, const std::string& c) override {
      return inner_->copy_in(h, c);
    }
    void kill() override { inner_->kill(); }

   private:
    std::unique_ptr<sandbox::Sandbox> inner_;
    std::atomic<int>& alive_;
  };

  sandbox::SandboxBackend& inner_;
  std::atomic<int> alive_{0}, created_{0};
  std::mutex mutex_;
  std::map<std::string,
           std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::time_point>>
      creates_;
};

class PrestartedSandboxTest : public RunscRunTest {
 protected:
  PrestartedSandboxTest() : RunscRunTest("sandci-prestart-test-", {}) {}

  void SetUp() override {
    RunscRunTest::SetUp();
    if (HasFatalFailure()) return;
    counting_ = std::make_unique<CountingBackend>(*backend_);
  }

  fs::path run_dir() const { return dir_.path() / "run"; }

  // The spec the run's first job of the default image gets (what the daemon guesses).
  sandbox::SandboxSpec first_job_spec() {
    auto image = store_.lookup("debian:12");
    EXPECT_TRUE(image) << image.error().message;
    auto event = write_event_file(run_dir() / "scratch", nlohmann::json::object().dump());
    EXPECT_TRUE(event) << event.error();
    auto spec = job_sandbox_spec(*image, workspace(), {}, *event, {});
    EXPECT_TRUE(spec) << spec.error();
    spec->name_hint = "first";
    return *spec;
  }

  RunResult run_workflow(sandbox::SandboxBackend& backend, JobSlots& slots, std::string& log) {
    RunEnvironment env = environment(backend);
    env.run_dir = run_dir();
    env.run_id = "3";
    env.capacity = 2;
    env.slots = &slots;
    Ran ran = run_workspace(env);
    log = ran.logs["build"];
    return ran.result;
  }

  std::unique_ptr<CountingBackend> counting_;
};

TEST_F(PrestartedSandboxTest, TheFirstJobTakesItAndSeesTheCheckoutWrittenAfterItStarted) {
  JobSlots slots(2);
  {
    PrestartedSandbox first(*counting_, &slots);
    ASSERT_TRUE(first.start(first_job_spec()));
    EXPECT_EQ(slots.in_use(), 1u) << "the sandbox started ahead holds a slot";
    // The "checkout", written while (or after) the sandbox starts.
    write_file(workspace() / ".github/workflows/ci.yml", R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: ls -a
      - run: cat src/greeting.txt && test -x tools/check.sh && tools/check.sh
      - run: echo changed-inside > src/greeting.txt && tr a-z A-Z < src/greeting.txt
)");
    write_file(workspace() / "src/greeting.txt", "hello from the checkout\n");
    write_file(workspace() / "TOP_LEVEL_MARKER", "");
    write_file(workspace() / "tools/check.sh", "#!/bin/sh\necho checked in $(pwd)\n");
    fs::permissions(workspace() / "tools/check.sh", fs::perms::owner_all, fs::perm_options::add);
    std::string log;
    EXPECT_EQ(run_workflow(first, slots, log), RunResult::success) << log;
    EXPECT_TRUE(first.taken()) << "the job started its own sandbox";
    // gVisor keeps a folder's listing once read: the workspace's is whole.
    EXPECT_NE(log.find("TOP_LEVEL_MARKER"), std::string::npos) << log;
    EXPECT_NE(log.find("hello from the checkout"), std::string::npos) << log;
    EXPECT_NE(log.find("checked in /workspace"), std::string::npos) << log;
    EXPECT_NE(log.find("CHANGED-INSIDE"), std::string::npos) << log;
  }
  EXPECT_EQ(read_file(workspace() / "src/greeting.txt"), "hello from the checkout\n")
      << "a job's writes reach the host's checkout";
  EXPECT_EQ(counting_->created(), 1) << "one sandbox for one job";
  EXPECT_EQ(counting_->alive(), 0);
  EXPECT_EQ(slots.in_use(), 0u);
}

TEST_F(PrestartedSandboxTest, AJobOfAnotherSpecStartsItsOwnAndTheUnusedOneIsDestroyed) {
  JobSlots slots(2);
  PrestartedSandbox first(*counting_, &slots);
  ASSERT_TRUE(first.start(first_job_spec()));
  sandbox::SandboxSpec other = first_job_spec();
  other.env.push_back("EXTRA=1");  // what a job's action or egress would change
  auto cold = first.create(other);
  ASSERT_TRUE(cold) << cold.error().message;
  EXPECT_FALSE(first.taken());
  first.discard();
  EXPECT_EQ(counting_->alive(), 1) << "only the job's own sandbox is left";
  EXPECT_EQ(slots.in_use(), 0u) << "the discarded sandbox gave its slot back";
  cold->reset();
  EXPECT_EQ(counting_->alive(), 0);
  // Gone for good: the same spec now starts cold.
  auto again = first.create(first_job_spec());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(counting_->created(), 3);
}

// Two creates of its spec while it starts (a warm pool's two starts for the
// next jobs): the first waits for it and takes it, the second starts its own
// at once instead of waiting for a sandbox it will not get.
TEST_F(PrestartedSandboxTest, OnlyOneCreateWaitsForTheStartUnderWay) {
  PrestartedSandbox first(*counting_, nullptr);
  ASSERT_TRUE(first.start(first_job_spec()));  // its inner create is recorded as "first"
  // The same spec for both (name hints are not part of it), told apart by hint.
  auto spec_named = [this](const std::string& hint) {
    sandbox::SandboxSpec spec = first_job_spec();
    spec.name_hint = hint;
    return spec;
  };
  std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> one, two;
  std::thread waiting([&] { one = first.create(spec_named("one")); });
  std::this_thread::sleep_for(20ms);  // one create is now waiting for the start under way
  two = first.create(spec_named("two"));
  waiting.join();
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_TRUE(first.taken());
  // Exactly one of them got the sandbox started ahead; the other started its
  // own before that start had ended.
  const bool one_took = (*one)->id().find("-first-") != std::string::npos;
  const bool two_took = (*two)->id().find("-first-") != std::string::npos;
  EXPECT_NE(one_took, two_took) << (*one)->id() << " " << (*two)->id();
  const auto own = counting_->create_of(one_took ? "two" : "one");
  EXPECT_LT(own.first, counting_->create_of("first").second) << "the other create waited for the start under way";
  one->reset();
  two->reset();
  EXPECT_EQ(counting_->created(), 2);
  EXPECT_EQ(counting_->alive(), 0);
}

TEST_F(PrestartedSandboxTest, AJobWaitingForItsSlotMakesItGiveTheSlotBack) {
  JobSlots slots(1);
  PrestartedSandbox first(*counting_, &slots);
  ASSERT_TRUE(first.start(first_job_spec()));
  EXPECT_FALSE(PrestartedSandbox(*counting_, &slots).start(first_job_spec())) << "no free slot: nothing started";
  std::atomic<bool> stop{false};
  EXPECT_TRUE(slots.acquire(stop)) << "another run's job waits forever";
  EXPECT_FALSE(first.taken());
  EXPECT_EQ(counting_->alive(), 0) << "the sandbox started ahead was destroyed for it";
  slots.release();
}

}  // namespace
}  // namespace sandci::agent
