// `run:` steps over real gVisor sandboxes, through the run engine: a step of
// bash or sh is one program in the sandbox (the shell runs the runner's wrapper
// and the script in a fork of itself), and what a script sees is what
// `bash -e script` or `sh -e script` would give it: $0, no arguments, no runner
// variables, stdin from /dev/null, no extra descriptors, its own EXIT trap, its
// exit code, `shell:` templates, working-directory, env, file commands, masks
// and timeouts. An image without bash keeps the wrapper that looks for it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "integration/agent/runner/runsc_run_fixture.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using namespace runsc_run;

// Counts the sandboxes the runner and its warm pool create.
class CountingBackend final : public sandbox::SandboxBackend {
 public:
  explicit CountingBackend(sandbox::SandboxBackend& inner) : inner_(inner) {}
  std::expected<std::unique_ptr<sandbox::Sandbox>, sandbox::SandboxError> create(
      const sandbox::SandboxSpec& spec) override {
    {
      std::lock_guard lock(mutex_);
      ++(spec.name_hint == "warm" ? warm_ : cold_);
    }
    return inner_.create(spec);
  }
  int warm() const { std::lock_guard lock(mutex_); return warm_; }
  int cold() const { std::lock_guard lock(mutex_); return cold_; }

 private:
  sandbox::SandboxBackend& inner_;
  mutable std::mutex mutex_;
  int warm_ = 0, cold_ = 0;
};

class StepShellTest : public RunscRunTest {
 protected:
  StepShellTest()
      : RunscRunTest("sandci-step-test-", {"sh", "head", "cat", "echo", "test", "chmod", "mkdir", "tar", "ls", "pwd"}) {}

  void SetUp() override {
    RunscRunTest::SetUp();
    if (HasFatalFailure()) return;
    counting_ = std::make_unique<CountingBackend>(*backend_);
  }

  Ran run(const std::string& workflow, std::size_t warm = 0) {
    write_file(workspace() / ".github" / "workflows" / "ci.yml", workflow);
    RunEnvironment env = environment(*counting_);
    env.capacity = 2;
    env.warm_sandboxes = warm;
    return run_workspace(env);
  }

  static bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }
  static int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::unique_ptr<CountingBackend> counting_;
};

// Walks from the script's own process up to the exec's, with shell builtins
// only (a program started to look would be one more in the tree), then lists
// every process of the sandbox but its init. ($PPID is no help: a subshell
// keeps its shell's.)
constexpr const char* kShowProcesses = R"(
          p=$BASHPID
          while [ "$p" -gt 1 ]; do
            mapfile -d '' args < "/proc/$p/cmdline"
            read -r _ _ _ up _ < "/proc/$p/stat"
            echo "chain ${args[0]} ${args[1]} ${#args[@]}"
            p=$up
          done
          for d in /proc/[0-9]*; do
            mapfile -d '' args < "$d/cmdline"
            if [ "${d#/proc/}" != 1 ]; then echo "process ${args[0]}"; fi
          done
          read -r _ _ _ up _ < /proc/$BASHPID/stat
          mapfile -d '' mine < /proc/$BASHPID/cmdline
          mapfile -d '' parent < "/proc/$up/cmdline"
          if [ "${mine[*]}" = "${parent[*]}" ]; then echo "the script runs in a fork of the exec's shell"; fi
)";

TEST_F(StepShellTest, ABashStepIsOneProgramAndItsScriptAForkOfIt) {
  auto ran = run(std::string(R"Y(
on: push
jobs:
  tree:
    runs-on: ubuntu-latest
    steps:
      - name: default shell
        run: |)Y") + kShowProcesses + R"Y(
      - name: bash
        shell: bash
        run: |)Y" + kShowProcesses);
  const std::string& log = ran.logs["tree"];
  ASSERT_EQ(ran.result, RunResult::success) << log;
  // Both steps: the script's process and its parent, the exec's only program,
  // are `bash -c <wrapper> ...` (before, `bash -e script` under `/bin/sh -c`).
  EXPECT_EQ(count(log, "chain bash -c "), 4) << log;
  EXPECT_EQ(count(log, "chain "), 4) << log;
  EXPECT_FALSE(has(log, "chain /bin/sh")) << log;
  // Beside the sandbox's init (pid 1) and its `sleep`, two processes per step: both bash.
  EXPECT_EQ(count(log, "process bash\n"), 4) << log;
  EXPECT_EQ(count(log, "process sleep\n"), 2) << log;
  EXPECT_EQ(count(log, "process "), 6) << log;
  EXPECT_EQ(count(log, "the script runs in a fork of the exec's shell"), 2) << log;
}

TEST_F(StepShellTest, AScriptSeesWhatBashDashEWouldGiveIt) {
  write_file(workspace() / "sub" / "keep", "");
  auto ran = run(R"Y(
on: push
env:
  FROM_WORKFLOW: wf
jobs:
  shells:
    runs-on: ubuntu-latest
    steps:
      - id: look
        env:
          FROM_STEP: st
        run: |
          echo "zero=$0 source=${BASH_SOURCE[0]} args=$# flags=$-"
          echo "runner-vars=[${n-}${x-}${w-}${p-}${r-}${s-}${d-}]"
          if read -r line; then echo "stdin had: $line"; else echo "stdin empty"; fi
          for fd in 3 4 5 6 7; do if [ -e /proc/self/fd/$fd ]; then echo "descriptor $fd is open"; fi; done
          echo "env=$FROM_WORKFLOW/$FROM_STEP pwd=$PWD"
          trap 'echo "late=from-trap" >> "$GITHUB_OUTPUT"' EXIT
          echo "early=1" >> "$GITHUB_OUTPUT"
          echo "NEXT_STEP=seen" >> "$GITHUB_ENV"
          echo "::add-mask::hush-hush"
          echo "the word is hush-hush"
      - run: |
          echo "outputs=${{ steps.look.outputs.early }},${{ steps.look.outputs.late }} env=$NEXT_STEP"
          false
          echo "not reached"
        continue-on-error: true
      - shell: bash
        run: |
          false | true
          echo "not reached with pipefail"
        continue-on-error: true
      - run: |
          false | true
          echo "default shell: no pipefail"
      - shell: sh
        working-directory: sub
        run: |
          echo "sh pwd=$(pwd) zero=$0 args=$#"
          exit 3
        continue-on-error: true
      - shell: perl {0}
        run: |
          print "perl says $ENV{NEXT_STEP}\n";
          open(my $fh, '>>', $ENV{GITHUB_OUTPUT}) or die; print $fh "from_perl=yes\n";
      - run: sleep 30
        timeout-minutes: 0.02
        continue-on-error: true
)Y");
  const std::string& log = ran.logs["shells"];
  EXPECT_EQ(ran.result, RunResult::success) << log;
  EXPECT_TRUE(has(log, "zero=/tmp/sandci/step-0-script.sh source=/tmp/sandci/step-0-script.sh args=0")) << log;
  EXPECT_TRUE(has(log, "runner-vars=[]")) << log;
  EXPECT_TRUE(has(log, "stdin empty")) << log;
  EXPECT_FALSE(has(log, "descriptor ")) << "descriptors 3-7 are the runner's: " << log;
  EXPECT_TRUE(has(log, "env=wf/st pwd=/workspace")) << log;
  EXPECT_TRUE(has(log, "outputs=1,from-trap env=seen")) << "the script's own EXIT trap wrote an output: " << log;
  EXPECT_TRUE(has(log, "the word is ***")) << log;
  EXPECT_FALSE(has(log, "the word is hush-hush")) << log;
  EXPECT_FALSE(has(log, "not reached")) << log;
  EXPECT_TRUE(has(log, "default shell: no pipefail")) << log;
  EXPECT_TRUE(has(log, "sh pwd=/workspace/sub zero=/tmp/sandci/step-4-script.sh args=0")) << log;
  EXPECT_TRUE(has(log, "error: exit code 3")) << log;
  EXPECT_TRUE(has(log, "perl says seen")) << log;
  EXPECT_TRUE(has(log, "timed out after")) << log;
}

TEST_F(StepShellTest, ALongScriptComesOnStdinAndStillRunsInOneProgram) {
  std::string body;
  for (int i = 0; i < 1200; ++i) body += "          # padding line " + std::to_string(i) + " of a long generated script\n";
  auto ran = run(std::string(R"Y(
on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: |
)Y") + body + R"Y(          read -r _ _ _ up _ < /proc/$BASHPID/stat
          mapfile -d '' parent < "/proc/$up/cmdline"
          echo "long script ran under ${parent[0]} ${parent[1]}; stdin empty: $(cat | wc -c)"
)Y");
  const std::string& log = ran.logs["long"];
  EXPECT_EQ(ran.result, RunResult::success) << log;
  EXPECT_TRUE(has(log, "long script ran under bash -c; stdin empty: 0")) << log;
}

TEST_F(StepShellTest, AnImageWithoutBashRunsTheDefaultShellThroughSh) {
  auto ran = run(R"Y(
on: push
jobs:
  tiny:
    runs-on: ubuntu-latest
    container: busybox:test
    steps:
      - id: s
        run: |
          echo "default is sh: zero=$0"
          echo "v=1" >> "$GITHUB_OUTPUT"
      - run: echo "got ${{ steps.s.outputs.v }}"
      - shell: bash
        run: echo "never"
)Y");
  const std::string& log = ran.logs["tiny"];
  EXPECT_EQ(ran.result, RunResult::failure) << log;
  EXPECT_TRUE(has(log, "default is sh: zero=/tmp/sandci/step-0-script.sh")) << log;
  EXPECT_TRUE(has(log, "got 1")) << log;
  EXPECT_TRUE(has(log, "error: exit code 127")) << "`shell: bash` where there is none: " << log;
}

// The warm pool learns the plan: the diamond's later jobs find sandboxes the
// pool started while the first ran, each fresh, and no sandbox is started that
// no job takes.
TEST_F(StepShellTest, WarmSandboxesForAPlanAreFreshAndNoneIsLeftOver) {
  auto ran = run(R"Y(
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo mark-a > /tmp/mark && echo mark-a > /workspace/mark-a
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: if cat /tmp/mark /workspace/mark-a 2>/dev/null; then echo "b saw""-mark"; fi; echo b > /tmp/mark
  c:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: if cat /tmp/mark /workspace/mark-a 2>/dev/null; then echo "c saw""-mark"; fi; echo c > /tmp/mark
  d:
    needs: [b, c]
    runs-on: ubuntu-latest
    steps:
      - run: if cat /tmp/mark 2>/dev/null; then echo "d saw""-mark"; fi
)Y", 2);
  EXPECT_EQ(ran.result, RunResult::success);
  for (const auto& [job, log] : ran.logs) EXPECT_FALSE(has(log, "saw-mark")) << job << ": " << log;
  EXPECT_EQ(counting_->warm() + counting_->cold(), 4) << "one sandbox per job, none started for nobody";
  EXPECT_GE(counting_->warm(), 1) << "the pool started sandboxes for the plan's later jobs";
  EXPECT_TRUE(fs::is_empty(dir_.path() / "runsc" / "bundles") || !fs::exists(dir_.path() / "runsc" / "bundles"));
}

}  // namespace
}  // namespace sandci::agent
