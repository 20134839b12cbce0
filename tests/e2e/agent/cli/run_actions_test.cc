// `sandci run` end to end with actions kept in the repository itself: a
// composite action with a script beside it and a JavaScript action with a post
// step, as a project's workflow would use them; on both sandbox backends.
#include <gtest/gtest.h>

#include "e2e/agent/cli/e2e_backends.h"
#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class RunActionsTest : public ::testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(Backends, RunActionsTest, ::testing::Values(Backend::runsc, Backend::docker), backend_name);

TEST_P(RunActionsTest, LocalCompositeAndJavaScriptActionsRunInTheJob) {
  StateDir state;
  ASSERT_TRUE(state.has_images()) << "test images missing: run scripts/test-setup.sh";
  if (GetParam() == Backend::docker) {
    ASSERT_NE(e2e_dockerd().daemon, nullptr) << e2e_dockerd().error;
  }
  TempDir repo, logs;
  const fs::path fixtures = fs::path(SANDCI_FIXTURES_DIR) / "actions";
  std::map<std::string, std::string> files;
  for (const char* name : {"greet", "timed-section"})
    for (const auto& entry : fs::recursive_directory_iterator(fixtures / name))
      if (entry.is_regular_file())
        files[".github/actions/" + std::string(name) + "/" + fs::relative(entry.path(), fixtures / name).string()] =
            read_file(entry.path());
  files[".github/workflows/ci.yml"] = R"Y(
name: ci
on: push
jobs:
  greet:
    runs-on: ubuntu-latest
    outputs:
      message: ${{ steps.hello.outputs.message }}
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/timed-section
        with:
          label: greeting
      - id: hello
        uses: ./.github/actions/greet
        with:
          who-to-greet: ${{ github.actor }}
  after:
    needs: greet
    runs-on: ubuntu-latest
    steps:
      - run: echo "upstream said ${{ needs.greet.outputs.message }}"
)Y";
  make_repo(repo.path(), files);
  // git keeps the executable bit of the script beside the composite action.
  run_command({"git", "-C", repo.path().string(), "update-index", "--chmod=+x", ".github/actions/greet/greet.sh"}, 30s);
  run_command({"git", "-C", repo.path().string(), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit",
               "-q", "-m", "exec bit"},
              30s);

  std::vector<std::string> argv = {SANDCI_BINARY, "run", repo.path().string(), "--plain", "--state-dir",
                                   state.path().string(), "--logs", logs.path().string()};
  for (const auto& arg : backend_args(GetParam())) argv.push_back(arg);
  auto r = run_command(argv, 300s);
  EXPECT_FALSE(r.timed_out) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pre: starting section greeting"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Hello, sandci!"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("post: started=pre-of-greeting phase=main-done"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("upstream said Hello, sandci!"), std::string::npos) << r.output;
  EXPECT_EQ(state.runsc_list(), "");
  if (GetParam() == Backend::docker) {
    EXPECT_EQ(docker_containers(), "[]\n");
  }
}

}  // namespace
}  // namespace sandci::e2e
