// Steps that use actions, over real gVisor sandboxes: the run engine's own path
// (prepare_run + execute_run) on a workspace holding the actions of
// tests/fixtures/actions, in the test image (debian:12) and in an image that
// holds only a static busybox (no C library at all), where the Node.js runtime
// the runner mounts must still work. Remote actions come through an
// ActionSource that serves folders this test prepares (the seam the git-backed
// source implements).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "agent/runner/action_runner.h"
#include "integration/agent/runner/runsc_run_fixture.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using namespace runsc_run;

const fs::path kFixtures = fs::path(SANDCI_FIXTURES_DIR) / "actions";

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

// Serves "owner/repo@ref" from folders the test fills; counts the fetches.
class FolderActionSource final : public ActionSource {
 public:
  void add(const std::string& repository_at_ref, fs::path root) {
    repositories_[repository_at_ref] = std::move(root);
  }
  std::expected<FetchedRepository, std::string> fetch(const scheduler::UsesRef& ref) override {
    std::lock_guard lock(mutex_);
    ++fetches_;
    auto it = repositories_.find(ref.repository() + "@" + ref.ref);
    if (it == repositories_.end())
      return std::unexpected("cannot fetch " + ref.repository() + "@" + ref.ref + " from the test source: unknown");
    return FetchedRepository{it->second, std::string(40, 'a')};
  }
  int fetches() const { return fetches_; }

 private:
  std::mutex mutex_;
  std::map<std::string, fs::path> repositories_;
  int fetches_ = 0;
};

class ActionStepsTest : public RunscRunTest {
 protected:
  ActionStepsTest()
      : RunscRunTest("sandci-actions-test-",
                     {"sh", "sleep", "head", "cat", "echo", "test", "chmod", "mkdir", "tar", "ls", "grep"}) {}

  // Copies fixture actions into the workspace's .github/actions/<name>.
  void add_local_action(const std::string& name) {
    copy_tree(kFixtures / name, workspace() / ".github" / "actions" / name);
  }

  Ran run(const std::string& workflow, ActionSource* source = nullptr) {
    write_file(workspace() / ".github" / "workflows" / "ci.yml", workflow);
    RunEnvironment env = environment(*backend_);
    env.actions = source;
    env.node_cache_dir = node_cache_;
    return run_workspace(env);
  }

  static std::size_t find(const std::string& text, const std::string& what) { return text.find(what); }

  fs::path node_cache_ = dir_.path() / "node-cache";
};

TEST_F(ActionStepsTest, CompositeActionRunsItsScriptWithInputsAndMapsItsOutputs) {
  add_local_action("greet");
  auto ran = run(R"Y(
on: push
jobs:
  hello:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: not-there
    steps:
      - id: greet
        uses: ./.github/actions/greet
        with:
          who-to-greet: Mona
          shout: ${{ 1 == 1 }}
      - working-directory: .
        run: |
          echo "message=${{ steps.greet.outputs.message }} length=${{ steps.greet.outputs.length }}"
          echo "env GREETED=$GREETED"
          greeter
)Y");
  const std::string& log = ran.logs["hello"];
  EXPECT_EQ(ran.result, RunResult::success) << log;
  EXPECT_NE(find(log, "HELLO, MONA!"), std::string::npos) << log;
  EXPECT_NE(find(log, "##[group]Count the characters"), std::string::npos) << log;
  EXPECT_NE(find(log, "##[group]Run $GITHUB_ACTION_PATH/greet.sh"), std::string::npos) << log;
  EXPECT_NE(find(log, "message=HELLO, MONA! length=12"), std::string::npos) << log;
  EXPECT_NE(find(log, "env GREETED=Mona"), std::string::npos) << log;
  EXPECT_NE(find(log, "greeter on PATH"), std::string::npos) << log;
}

TEST_F(ActionStepsTest, RequiredInputMissingIsAWarningAndUnknownInputsAreNamed) {
  add_local_action("greet");
  auto ran = run(R"Y(
on: push
jobs:
  hello:
    steps:
      - uses: ./.github/actions/greet
        with:
          greetng: Hi
)Y");
  const std::string& log = ran.logs["hello"];
  EXPECT_EQ(ran.result, RunResult::success) << log;
  EXPECT_NE(find(log, "warning: input required and not supplied: 'who-to-greet'"), std::string::npos) << log;
  EXPECT_NE(find(log, "warning: unexpected input(s) 'greetng' for ./.github/actions/greet; valid inputs are "
                      "['who-to-greet', 'greeting', 'shout']"),
            std::string::npos)
      << log;
  EXPECT_NE(find(log, "Hello, !"), std::string::npos) << log;
}

TEST_F(ActionStepsTest, NodeActionReadsInputsWritesAnOutputAndASummaryInAnyImage) {
  add_local_action("word-count");
  auto ran = run(R"Y(
on: push
jobs:
  debian:
    runs-on: ubuntu-latest
    steps:
      - id: count
        uses: ./.github/actions/word-count
        with:
          text: the quick brown fox
          summary title: Fox words
      - run: test "${{ steps.count.outputs.words }}" = 4 && echo "words output ok"
  bare:
    container: busybox:test
    steps:
      - id: count
        uses: ./.github/actions/word-count
        with:
          text: only a shell here
      - run: test "${{ steps.count.outputs.words }}" = 4 && echo "words output ok"
)Y");
  ASSERT_EQ(ran.result, RunResult::success) << ran.logs["debian"] << ran.logs["bare"];
  for (const std::string job : {"debian", "bare"}) {
    const std::string& log = ran.logs[job];
    EXPECT_NE(find(log, "node v"), std::string::npos) << log;
    EXPECT_NE(find(log, "counted 4 words in dist"), std::string::npos) << log;
    EXPECT_NE(find(log, "words output ok"), std::string::npos) << log;
  }
  EXPECT_NE(find(ran.summary("debian"), "### Fox words"), std::string::npos) << ran.summary("debian");
  EXPECT_NE(find(ran.summary("debian"), "| 4 |"), std::string::npos) << ran.summary("debian");
  EXPECT_NE(find(ran.summary("bare"), "### Word count"), std::string::npos) << ran.summary("bare");
  // The runtime was built once, on the host, from the host's node.
  EXPECT_TRUE(fs::exists(node_cache_)) << node_cache_;
}

TEST_F(ActionStepsTest, PreMainAndPostShareStateAndMasksHold) {
  add_local_action("timed-section");
  auto ran = run(R"Y(
on: push
jobs:
  build:
    steps:
      - id: section
        uses: ./.github/actions/timed-section
        with:
          label: compile
          token: s3cr3t-t0ken-value
      - run: echo "between, section=${{ steps.section.outputs.section }}"
)Y");
  const std::string& log = ran.logs["build"];
  EXPECT_EQ(ran.result, RunResult::success) << log;
  const auto pre = find(log, "pre: starting section compile");
  const auto main = find(log, "main: STATE_started=pre-of-compile");
  const auto between = find(log, "between, section=compile");
  const auto post = find(log, "post: started=pre-of-compile phase=main-done action=section");
  ASSERT_NE(pre, std::string::npos) << log;
  ASSERT_NE(main, std::string::npos) << log;
  ASSERT_NE(between, std::string::npos) << log;
  ASSERT_NE(post, std::string::npos) << log;
  EXPECT_LT(pre, main);
  EXPECT_LT(main, between);
  EXPECT_LT(between, post);
  EXPECT_NE(find(log, "##[step] Post Run ./.github/actions/timed-section"), std::string::npos) << log;
  EXPECT_NE(find(log, "main: the token is ***"), std::string::npos) << log;
  EXPECT_EQ(find(log, "s3cr3t-t0ken-value"), std::string::npos) << log;
}

TEST_F(ActionStepsTest, AFailingActionFailsTheJobAndItsPostStillRuns) {
  add_local_action("flaky-deploy");
  auto ran = run(R"Y(
on: push
jobs:
  deploy:
    steps:
      - uses: ./.github/actions/flaky-deploy
      - run: echo "never printed"
)Y");
  const std::string& log = ran.logs["deploy"];
  EXPECT_EQ(ran.result, RunResult::failure) << log;
  EXPECT_NE(find(log, "deploy: taking the lock, then failing"), std::string::npos) << log;
  EXPECT_NE(find(log, "the target refused the upload"), std::string::npos) << log;
  EXPECT_NE(find(log, "error: exit code 3"), std::string::npos) << log;
  EXPECT_EQ(find(log, "never printed"), std::string::npos) << log;
  EXPECT_NE(find(log, "cleanup: releasing lock=held-by-deploy"), std::string::npos) << log;
  ASSERT_EQ(ran.jobs.size(), 1u);
  EXPECT_NE(ran.jobs[0].message.find("exit code 3"), std::string::npos) << ran.jobs[0].message;
}

TEST_F(ActionStepsTest, NestedCompositeActionsAndTheDepthLimit) {
  add_local_action("greet");
  add_local_action("greet-twice");
  add_local_action("loop");
  auto ran = run(R"Y(
on: push
jobs:
  nested:
    steps:
      - id: twice
        uses: ./.github/actions/greet-twice
        with:
          who: Lin
      - run: echo "first=${{ steps.twice.outputs.first }}"
  endless:
    steps:
      - uses: ./.github/actions/loop
)Y");
  const std::string& nested = ran.logs["nested"];
  EXPECT_NE(find(nested, "Hello, Lin!"), std::string::npos) << nested;
  EXPECT_NE(find(nested, "BYE, LIN!"), std::string::npos) << nested;
  EXPECT_NE(find(nested, "first=Hello, Lin!"), std::string::npos) << nested;
  const std::string& endless = ran.logs["endless"];
  EXPECT_NE(find(endless, "composite actions nest more than 10 levels deep"), std::string::npos) << endless;
  std::size_t levels = 0;
  for (auto at = endless.find("loop level"); at != std::string::npos; at = endless.find("loop level", at + 1))
    ++levels;
  EXPECT_EQ(levels, 2 * 10u) << endless;  // each level's echo, once shown and once as the step name
  EXPECT_EQ(ran.result, RunResult::failure);
}

TEST_F(ActionStepsTest, RemoteActionsComeFromTheActionSourceMountedReadOnly) {
  // acme/tools holds a composite action at its root that uses a JavaScript
  // action of another repository; both are fetched before the job starts.
  const fs::path tools = dir_.path() / "remote" / "tools";
  const fs::path counter = dir_.path() / "remote" / "counter";
  copy_tree(kFixtures / "greet", tools);
  write_file(tools / "action.yml", R"Y(
name: Greet and count
inputs:
  who: {required: true}
outputs:
  words:
    value: ${{ steps.count.outputs.words }}
runs:
  using: composite
  steps:
    - shell: bash
      run: |
        echo "action path is $GITHUB_ACTION_PATH repo=$GITHUB_ACTION_REPOSITORY ref=$GITHUB_ACTION_REF"
        touch "$GITHUB_ACTION_PATH/written" 2>/dev/null && echo "action folder writable" || echo "action folder read-only"
        WHO='${{ inputs.who }}' GREETING=Hi SHOUT=false "${{ github.action_path }}/greet.sh"
    - id: count
      uses: Acme/Counter/word-count@v1
      with:
        text: ${{ inputs.who }} and friends
)Y");
  copy_tree(kFixtures / "word-count", counter / "word-count");
  FolderActionSource source;
  source.add("acme/tools@v2", tools);
  source.add("Acme/Counter@v1", counter);
  auto ran = run(R"Y(
on: push
jobs:
  remote:
    steps:
      - id: tools
        uses: acme/tools@v2
        with:
          who: Ada
      - run: echo "remote words=${{ steps.tools.outputs.words }}"
      - uses: acme/missing@v9
        if: always()
)Y",
                 &source);
  const std::string& log = ran.logs["remote"];
  EXPECT_NE(find(log, "action path is /tmp/sandci/actions/acme/tools/" + std::string(40, 'a') +
                          " repo=acme/tools ref=v2"),
            std::string::npos)
      << log;
  EXPECT_NE(find(log, "action folder read-only"), std::string::npos) << log;
  EXPECT_NE(find(log, "Hi, Ada!"), std::string::npos) << log;
  EXPECT_NE(find(log, "remote words=3"), std::string::npos) << log;
  EXPECT_NE(find(log, "cannot fetch acme/missing@v9 from the test source"), std::string::npos) << log;
  EXPECT_EQ(ran.result, RunResult::failure);
  EXPECT_EQ(source.fetches(), 3);  // once per repository and ref, all before the sandbox
  EXPECT_FALSE(fs::exists(tools / "written"));
}

TEST_F(ActionStepsTest, WithoutAnActionSourceARemoteActionFailsSayingWhy) {
  auto ran = run(R"Y(
on: push
jobs:
  remote:
    steps:
      - uses: acme/tools@v2
)Y");
  const std::string& log = ran.logs["remote"];
  EXPECT_EQ(ran.result, RunResult::failure);
  EXPECT_NE(find(log, "'uses: acme/tools@v2' names a remote action, and this runner has no actions source"),
            std::string::npos)
      << log;
}

TEST_F(ActionStepsTest, BrokenMetadataFailsTheStepWithFileLineAndColumn) {
  write_file(workspace() / "ci" / "bad" / "action.yml", "name: bad\nruns:\n  using: docker\n  image: Dockerfile\n");
  auto ran = run(R"Y(
on: push
jobs:
  bad:
    steps:
      - uses: ./ci/bad
      - uses: ./ci/absent
        if: always()
)Y");
  const std::string& log = ran.logs["bad"];
  EXPECT_EQ(ran.result, RunResult::failure);
  EXPECT_NE(find(log, "./ci/bad/action.yml:3:10: error: 'using: docker' is refused"), std::string::npos) << log;
  EXPECT_NE(find(log, "'uses: ./ci/absent': no action.yml or action.yaml in /workspace/ci/absent"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace sandci::agent
