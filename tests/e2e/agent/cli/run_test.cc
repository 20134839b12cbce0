// `sandci run` end to end: real repositories, the real binary, real gVisor
// sandboxes, on both backends (runsc driven directly, and the Docker engine with
// runtime runsc: see e2e_backends.h). Each test has its own state folder; the job
// image comes from the shared test images that scripts/test-setup.sh prepares.
#include <gtest/gtest.h>

#include <algorithm>

#include "e2e/agent/cli/e2e_backends.h"
#include "e2e/agent/cli/e2e_support.h"

namespace sandci::e2e {
namespace {

using namespace std::chrono_literals;

class RunTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.has_images()) << "test images missing: run scripts/test-setup.sh (make test does)";
    if (docker()) {
      ASSERT_NE(e2e_dockerd().daemon, nullptr) << e2e_dockerd().error;
    }
  }

  bool docker() const { return GetParam() == Backend::docker; }

  Result run(const std::vector<std::string>& extra, std::chrono::seconds limit = 300s,
             const std::function<void(pid_t, const std::string&)>& on_output = {}) {
    std::vector<std::string> argv = {SANDCI_BINARY, "run", repo_.path().string(), "--plain",
                                     "--state-dir", state_.path().string(), "--logs", logs_.path().string()};
    for (const auto& arg : backend_args(GetParam())) argv.push_back(arg);
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = run_command(argv, limit, {}, on_output);
    EXPECT_FALSE(r.timed_out) << r.output;
    return r;
  }

  void workflow(const std::string& yaml, std::map<std::string, std::string> files = {}) {
    files[".sandci/workflows/ci.yml"] = yaml;
    make_repo(repo_.path(), files);
  }

  void TearDown() override {
    // Whatever happened, no sandbox of this test may be left behind.
    EXPECT_EQ(state_.runsc_list(), "");
    if (docker()) {
      EXPECT_EQ(docker_containers(), "[]\n");
    }
    EXPECT_FALSE(fs::exists(state_.path() / "runs") &&
                 !fs::is_empty(state_.path() / "runs") && has_leftover_workspace());
  }

  bool has_leftover_workspace() const {
    for (const auto& run : fs::directory_iterator(state_.path() / "runs"))
      if (fs::exists(run.path() / "workspace")) return true;
    return false;
  }

  TempDir repo_, logs_;
  StateDir state_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RunTest, ::testing::Values(Backend::runsc, Backend::docker), backend_name);

// What the command line decides before and around the sandboxes (job and matrix
// selection, refs, folders, skipped jobs, working directories): the same on every
// backend, so run on runsc only. (They pass on Docker too; under ctest each test is
// its own process, and every Docker one starts and loads a dockerd of its own.)
class CliRunTest : public RunTest {};
INSTANTIATE_TEST_SUITE_P(Backends, CliRunTest, ::testing::Values(Backend::runsc), backend_name);

// A diamond: outputs flow through needs, artifacts from build to test, the
// GitHub environment is there, file commands work.
TEST_P(RunTest, DiamondWithOutputsArtifactsAndEnvironment) {
  workflow(R"Y(
on: push
env:
  GREETING: hello
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - id: v
        run: |
          echo "version=1.2.3" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=yes" >> "$GITHUB_ENV"
          mkdir -p "$HOME/tools" && printf '#!/bin/sh\necho tool-ran\n' > "$HOME/tools/mytool"
          chmod +x "$HOME/tools/mytool" && echo "$HOME/tools" >> "$GITHUB_PATH"
      - run: |
          test "$FROM_ENV_FILE" = yes
          mytool
          echo "summary line" >> "$GITHUB_STEP_SUMMARY"
  build:
    needs: setup
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          mkdir -p out
          echo "built ${{ needs.setup.outputs.version }}" > out/app.txt
      - uses: actions/upload-artifact@v4
        with:
          name: app
          path: out/
  lint:
    needs: setup
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "ws=$GITHUB_WORKSPACE sha=$GITHUB_SHA ref=$GITHUB_REF name=$GITHUB_REF_NAME"
          echo "repo=$GITHUB_REPOSITORY event=$GITHUB_EVENT_NAME job=$GITHUB_JOB ci=$CI os=$RUNNER_OS sandci=$SANDCI"
          test -n "$GITHUB_RUN_ID" && test -d "$RUNNER_TEMP" && test -f "$GITHUB_EVENT_PATH"
          grep -q '"ref"' "$GITHUB_EVENT_PATH"
          test "$GREETING" = hello
          test "$(git rev-parse HEAD)" = "$GITHUB_SHA"
          echo "hash=${{ hashFiles('src/*.txt') }}"
  test:
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: app
          path: got
      - run: |
          cat got/app.txt
          test "$(cat got/app.txt)" = "built 1.2.3"
)Y",
           {{"src/a.txt", "a\n"}});
  auto r = run({});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[lint] ws=/workspace sha="), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ref=refs/heads/main name=main"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("event=push job=lint ci=true os=Linux sandci=true"), std::string::npos);
  EXPECT_NE(r.output.find("[setup] tool-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[test] built 1.2.3"), std::string::npos) << r.output;
  // hashFiles of one file is not empty and is 64 hex digits.
  auto at = r.output.find("hash=");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(r.output.substr(at + 5, 64).find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(read_file(logs_.path() / "setup.summary.md").find("summary line"), std::string::npos);
  EXPECT_NE(read_file(logs_.path() / "test.log").find("built 1.2.3"), std::string::npos);
}

// Two workflows of one push both upload an artifact named "dist": as on GitHub,
// where each workflow is a run of its own, each sees only its own.
TEST_P(CliRunTest, WorkflowsOfOneRunKeepTheirArtifactsApart) {
  auto one = [](const std::string& flavour) {
    return "on: push\njobs:\n  make:\n    steps:\n      - run: mkdir -p out && echo " + flavour +
           " > out/what.txt\n      - uses: actions/upload-artifact@v4\n        with: {name: dist, path: out/}\n"
           "  use:\n    needs: make\n    steps:\n      - uses: actions/download-artifact@v4\n"
           "        with: {name: dist, path: got}\n      - run: test \"$(cat got/what.txt)\" = " + flavour +
           " && echo \"dist of " + flavour + " is its own\"\n";
  };
  workflow(one("ci"), {{".sandci/workflows/release.yml", one("release")}});
  auto r = run({});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dist of ci is its own"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dist of release is its own"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("already uploaded"), std::string::npos) << r.output;
  // Each workflow's header is one whole line, though the other workflow's jobs print meanwhile.
  for (const char* file : {"ci.yml", "release.yml"}) {
    const std::string header = std::string("\nworkflow .sandci/workflows/") + file + ": 2 jobs, commit ";
    EXPECT_NE(("\n" + r.output).find(header), std::string::npos) << r.output;
  }
}

// A failing job skips its dependents; an always() job still runs; exit code 1.
TEST_P(RunTest, FailureSkipsDependentsButAlwaysRuns) {
  workflow(R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "about to fail"; exit 3
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "must not run"
  cleanup:
    needs: [build, test]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "cleanup build=${{ needs.build.result }} test=${{ needs.test.result }}"
)Y");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("exit code 3"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("must not run"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[test] skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cleanup build=failure test=skipped"), std::string::npos) << r.output;
}

// No secret, in any form the masker knows, reaches the output or the logs.
TEST_P(RunTest, SecretsNeverAppearInOutputOrLogs) {
  workflow(R"Y(
on: push
jobs:
  leak:
    runs-on: ubuntu-latest
    steps:
      - env:
          TOKEN: ${{ secrets.TOKEN }}
          MULTI: ${{ secrets.MULTI }}
          FROM_FILE: ${{ secrets.FROM_FILE }}
        run: |
          echo "token=$TOKEN"
          echo "b64=$(printf %s "$TOKEN" | base64)"
          echo "$MULTI"
          echo "file=$FROM_FILE"
          echo "::add-mask::dynamic-value-42"
          echo "later dynamic-value-42"
          echo "inline ${{ secrets.TOKEN }}"
)Y");
  TempDir secrets;
  write_file(secrets.path() / "secrets.env", "# comment\nFROM_FILE=file-secret-value-77\nMULTI<<EOF\nfirst-line-secret\nsecond-line-secret\nEOF\n");
  auto r = run({"--secret", "TOKEN=s3cr3t-t0ken-value", "--secrets-file", (secrets.path() / "secrets.env").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string logs = read_tree(logs_.path());
  for (const char* secret : {"s3cr3t-t0ken-value", "czNjcjN0LXQwa2VuLXZhbHVl", "first-line-secret",
                             "second-line-secret", "file-secret-value-77", "dynamic-value-42"}) {
    EXPECT_EQ(r.output.find(secret), std::string::npos) << secret << " leaked:\n" << r.output;
    EXPECT_EQ(logs.find(secret), std::string::npos) << secret << " leaked into logs";
  }
  EXPECT_NE(r.output.find("token=***"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("later ***"), std::string::npos) << r.output;
}

// Ctrl-C cancels: sandboxes killed, everything removed, exit code 130.
TEST_P(RunTest, InterruptCancelsAndCleansUp) {
  workflow(R"Y(
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: echo "started-sleeping"; sleep 600
  after:
    needs: slow
    runs-on: ubuntu-latest
    steps:
      - run: echo "must not run"
)Y");
  bool sent = false;
  auto r = run({}, 120s, [&](pid_t pid, const std::string& output) {
    if (!sent && output.find("started-sleeping") != std::string::npos) {
      kill(pid, SIGINT);
      sent = true;
    }
  });
  EXPECT_TRUE(sent) << r.output;
  EXPECT_EQ(r.exit_code, 130) << r.output;
  EXPECT_NE(r.output.find("cancelled"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("must not run"), std::string::npos) << r.output;
  // TearDown checks that no sandbox and no workspace is left.
}

// --job runs one job and what it needs; --matrix keeps the matching combinations.
TEST_P(CliRunTest, JobAndMatrixFilters) {
  workflow(R"Y(
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: echo "first-ran"
  build:
    needs: first
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, bsd]
        n: [1, 2]
    steps:
      - run: echo "build-${{ matrix.os }}-${{ matrix.n }}"
  unrelated:
    runs-on: ubuntu-latest
    steps:
      - run: echo "unrelated-ran"
)Y");
  auto r = run({"--job", "build", "--matrix", "os=bsd"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("first-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("build-bsd-1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("build-bsd-2"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("build-linux"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("unrelated-ran"), std::string::npos) << r.output;
}

// Artifact paths that try to leave the workspace are refused.
// CLI11's fuzz job uploads crash files from a folder that exists only after a
// crash: with `if-no-files-found: ignore` that is a quiet success, with `error`
// a failure that says no files were found.
TEST_P(RunTest, UploadFromAFolderThatDoesNotExistFollowsIfNoFilesFound) {
  workflow(R"Y(
on: push
jobs:
  quiet:
    steps:
      - uses: actions/upload-artifact@v4
        with:
          name: crashes
          path: ./build/fuzz/crash_*.txt
          if-no-files-found: ignore
  strict:
    steps:
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: out/dist/*.tar.gz
          if-no-files-found: error
)Y");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("quiet   success"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("strict  failure"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no files were found with the provided path"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("cannot open"), std::string::npos) << r.output;
}

// Upstream-only jobs (`if: github.repository == 'owner/name'`) run when the
// checkout's origin is that repository, as in a contributor's clone; --repository
// names it otherwise.
TEST_P(CliRunTest, GithubRepositoryComesFromTheOriginRemote) {
  workflow(R"Y(
on: push
jobs:
  upstream-only:
    if: github.repository == 'acme/widget'
    steps:
      - run: echo "repository is $GITHUB_REPOSITORY"
)Y");
  auto local = run({});
  EXPECT_EQ(local.exit_code, 0) << local.output;
  EXPECT_EQ(local.output.find("repository is"), std::string::npos) << local.output;
  ASSERT_EQ(run_command({"git", "-C", repo_.path().string(), "remote", "add", "origin",
                         "https://git.example.org/acme/widget.git"},
                        30s)
                .exit_code,
            0);
  auto cloned = run({});
  EXPECT_EQ(cloned.exit_code, 0) << cloned.output;
  EXPECT_NE(cloned.output.find("repository is acme/widget"), std::string::npos) << cloned.output;
  auto named = run({"--repository", "someone/fork"});
  EXPECT_EQ(named.output.find("repository is"), std::string::npos) << named.output;
  EXPECT_EQ(run({"--repository", "not-a-name"}).exit_code, 2);
}

TEST_P(RunTest, ArtifactEscapesAreRefused) {
  workflow(R"Y(
on: push
jobs:
  escape:
    runs-on: ubuntu-latest
    steps:
      - run: ln -s /etc/passwd leak && mkdir -p d && ln -s /etc d/etc
      - uses: actions/upload-artifact@v4
        with:
          name: up
          path: ../../etc/passwd
  symlink:
    runs-on: ubuntu-latest
    steps:
      - run: ln -s /etc/passwd leak
      - uses: actions/upload-artifact@v4
        with:
          name: link
          path: leak
)Y");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[escape] error: upload-artifact"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[symlink] error: upload-artifact"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("root:x:0:0"), std::string::npos) << r.output;
}

// The runner's files: the event payload cannot be changed, file commands that
// are too big or not regular files are refused with a warning, the step's own
// descriptors 3-6 are closed, long scripts still run; later steps and jobs go on.
TEST_P(RunTest, RunnerFilesAreReadOnlyOrPrivate) {
  std::string long_script;
  for (int i = 0; i < 3000; ++i) long_script += "          : line " + std::to_string(i) + " of a long script\n";
  workflow(R"Y(
on: push
jobs:
  files:
    runs-on: ubuntu-latest
    outputs: {kept: "${{ steps.ok.outputs.kept }}"}
    steps:
      - run: |
          if echo '{}' > "$GITHUB_EVENT_PATH"; then echo "event=WRITTEN"; else echo "event=refused"; fi
          grep -q '"ref"' "$GITHUB_EVENT_PATH" && echo "event=intact"
          for fd in 3 4 5 6; do if { true >&$fd; } 2>/dev/null; then echo "fd$fd=OPEN"; fi; done
          echo "scratch" > /tmp/sandci/mine && echo "temp" > "$RUNNER_TEMP/mine" && echo "private dirs writable"
          head -c 5000000 /dev/zero | tr '\0' a >> "$GITHUB_OUTPUT"
          ln -sf /etc/passwd "$GITHUB_ENV"
      - id: ok
        run: |
          echo "kept=yes" >> "$GITHUB_OUTPUT"
)Y" + long_script + R"Y(
          echo "long script ran to its end"
  after:
    runs-on: ubuntu-latest
    needs: files
    steps:
      - run: echo "got=${{ needs.files.outputs.kept }}"
)Y");
  auto r = run({"--timings"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("event=refused"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("event=intact"), std::string::npos) << r.output;
  // (The step's title quotes its first line: look for printed lines only.)
  EXPECT_EQ(r.output.find("[files] event=WRITTEN"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("=OPEN\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("private dirs writable"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("$GITHUB_OUTPUT: more than the limit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is not a regular file; ignored"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("root:x:0:0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("long script ran to its end"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[after] got=yes"), std::string::npos) << r.output;
  // --timings: a table after the summary, a row per job.
  const auto table = r.output.find("timings (seconds)");
  ASSERT_NE(table, std::string::npos) << r.output;
  EXPECT_GT(table, r.output.find("Total"));
  EXPECT_NE(r.output.find("\nfiles ", table), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nafter ", table), std::string::npos) << r.output;
}

// --warm 1: later jobs take sandboxes started ahead, each a fresh one: nothing an
// earlier job left in /tmp, the root or /workspace is there; no sandbox is left.
TEST_P(RunTest, WarmSandboxesAreFreshForEachJob) {
  workflow(R"Y(on: push
jobs:
  first:
    runs-on: x
    steps:
      - run: echo mark > /tmp/mark && echo mark > /etc/mark && echo mark > /workspace/mark
  second:
    runs-on: x
    needs: first
    steps:
      - run: for f in /tmp/mark /etc/mark /workspace/mark; do test -e "$f" && echo "saw $f"; done; uname -r
  third:
    runs-on: x
    needs: second
    steps:
      - run: for f in /tmp/mark /etc/mark /workspace/mark; do test -e "$f" && echo "saw $f"; done; echo third ran
)Y");
  auto r = run({"--warm", "1", "--timings"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("saw /"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[second] 4.4.0"), std::string::npos) << "still gVisor\n" << r.output;
  EXPECT_NE(r.output.find("[third] third ran"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(repo_.path() / "mark"));
}

// HEAD is what runs; --dirty runs the working tree as it is.
TEST_P(CliRunTest, CommittedHeadUnlessDirty) {
  workflow("on: push\njobs:\n  show:\n    runs-on: x\n    steps:\n      - run: cat file.txt\n",
           {{"file.txt", "committed-content\n"}});
  write_file(repo_.path() / "file.txt", "uncommitted-content\n");
  auto head = run({});
  EXPECT_EQ(head.exit_code, 0) << head.output;
  EXPECT_NE(head.output.find("[show] committed-content"), std::string::npos) << head.output;
  auto dirty = run({"--dirty"});
  EXPECT_EQ(dirty.exit_code, 0) << dirty.output;
  EXPECT_NE(dirty.output.find("[show] uncommitted-content"), std::string::npos) << dirty.output;
}

// A broken workflow is a usage error with file:line:col, and nothing runs.
TEST_P(CliRunTest, InvalidWorkflowIsReportedWithLocation) {
  workflow("on: push\njobs:\n  a:\n    runs-on: x\n    stepz:\n      - run: true\n");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(".sandci/workflows/ci.yml:5:5"), std::string::npos) << r.output;
}

// An image that is not in the store is a clear error naming it.
TEST_P(RunTest, MissingImageIsNamed) {
  workflow("on: push\njobs:\n  a:\n    runs-on: x\n    container: nosuch:1\n    steps:\n      - run: true\n");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("image 'nosuch:1'"), std::string::npos) << r.output;
  // How to get it: `sandci image ...`, or on the Docker backend load it into the engine.
  EXPECT_NE(r.output.find(docker() ? "is not in the Docker engine" : "sandci image"), std::string::npos) << r.output;
}

// runs-on labels map to images through <state>/labels.conf; --label wins over it.
TEST_P(RunTest, RunsOnLabelsPickImages) {
  workflow("on: push\njobs:\n  mapped:\n    runs-on: big-runner\n    steps:\n      - run: echo mapped-ran\n"
           "  plain:\n    runs-on: [self-hosted, linux]\n    steps:\n      - run: echo plain-ran\n");
  write_file(state_.path() / "labels.conf", "# label = image\nbig-runner = nosuch:2\n");
  auto from_file = run({});
  EXPECT_EQ(from_file.exit_code, 1) << from_file.output;
  EXPECT_NE(from_file.output.find("image 'nosuch:2'"), std::string::npos) << from_file.output;
  EXPECT_NE(from_file.output.find("plain-ran"), std::string::npos) << "unmapped labels use the default image";
  auto overridden = run({"--label", "big-runner=debian:12"});
  EXPECT_EQ(overridden.exit_code, 0) << overridden.output;
  EXPECT_NE(overridden.output.find("[mapped] mapped-ran"), std::string::npos) << overridden.output;
}

// A project in a subfolder of a larger repository (a monorepo, or
// examples/c-hello inside sandci), typed as `sandci run project` from the top:
// its workflows run with the subfolder as the workspace.
TEST_P(CliRunTest, SubfolderOfARepositoryIsTheWorkspace) {
  make_repo(repo_.path(),
            {{"README", "top\n"},
             {"project/.sandci/workflows/ci.yml",
              "on: push\njobs:\n  show:\n    runs-on: x\n    steps:\n      - run: cat marker.txt && ls\n"},
             {"project/marker.txt", "committed-marker\n"}});
  write_file(repo_.path() / "project/marker.txt", "uncommitted-marker\n");
  auto typed = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {SANDCI_BINARY, "run", "project", "--plain", "--state-dir",
                                     state_.path().string()};
    for (const auto& arg : backend_args(GetParam())) argv.push_back(arg);
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_command(argv, 300s, repo_.path());
  };
  auto head = typed({});
  EXPECT_EQ(head.exit_code, 0) << head.output;
  EXPECT_NE(head.output.find("project is a folder inside the repository"), std::string::npos) << head.output;
  EXPECT_NE(head.output.find("[show] committed-marker"), std::string::npos) << head.output;
  EXPECT_EQ(head.output.find("[show] README"), std::string::npos) << "the workspace is the subfolder";
  auto dirty = typed({"--dirty"});
  EXPECT_EQ(dirty.exit_code, 0) << dirty.output;
  EXPECT_NE(dirty.output.find("[show] uncommitted-marker"), std::string::npos) << dirty.output;

  // A subfolder that HEAD does not have yet: say what to do.
  write_file(repo_.path() / "newproject/.sandci/workflows/ci.yml", "on: push\njobs: {}\n");
  std::vector<std::string> argv = {SANDCI_BINARY, "run", "newproject", "--plain", "--state-dir",
                                   state_.path().string()};
  auto missing = run_command(argv, 60s, repo_.path());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("newproject is not in the commit HEAD"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("--dirty"), std::string::npos) << missing.output;
}

// A macOS or Windows job has no runner here: it is skipped with the reason, its
// dependents are skipped, and the Linux jobs run.
TEST_P(CliRunTest, JobsForAnotherOperatingSystemAreSkipped) {
  workflow(R"Y(
on: push
jobs:
  linux:
    runs-on: ubuntu-latest
    steps:
      - run: echo linux-ran
  mac:
    runs-on: macos-latest
    steps:
      - run: echo mac-ran
  after-mac:
    needs: mac
    runs-on: ubuntu-latest
    steps:
      - run: echo after-mac-ran
)Y");
  auto r = run({});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[linux] linux-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no runner for label 'macos-latest'"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("mac-ran"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("after-mac-ran"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("note: runs-on 'macos-latest'"), std::string::npos) << r.output;
}

// working-directory may be an expression, as on GitHub.
TEST_P(CliRunTest, WorkingDirectoryExpressionsAreEvaluated) {
  workflow(R"Y(
on: push
jobs:
  build:
    runs-on: linux
    strategy:
      matrix:
        dir: [alpha, beta]
    steps:
      - working-directory: ${{ matrix.dir }}
        run: cat name.txt
)Y",
           {{"alpha/name.txt", "in-alpha\n"}, {"beta/name.txt", "in-beta\n"}});
  auto r = run({});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("in-alpha"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("in-beta"), std::string::npos) << r.output;
}

// The checkout reaches the job, the job's writes to it never reach the host copy,
// and jobs run under gVisor whichever backend drives them.
TEST_P(RunTest, HostCheckoutIsUntouchedAndJobsRunUnderGvisor) {
  workflow(R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      kernel: ${{ steps.probe.outputs.kernel }}
    steps:
      - id: probe
        run: |
          echo "kernel=$(uname -r)" >> "$GITHUB_OUTPUT"
          echo "checkout has: $(cat notes.txt)"
          echo changed > notes.txt && rm -f keep.txt && echo new > made.txt
  report:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "build ran on ${{ needs.build.outputs.kernel }}"
)Y",
           {{"notes.txt", "from the repository\n"}, {"keep.txt", "keep\n"}});
  auto r = run({"--dirty"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[build] checkout has: from the repository"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[report] build ran on 4.4.0"), std::string::npos) << "gVisor's kernel\n" << r.output;
  EXPECT_EQ(read_file(repo_.path() / "notes.txt"), "from the repository\n");
  EXPECT_TRUE(fs::exists(repo_.path() / "keep.txt"));
  EXPECT_FALSE(fs::exists(repo_.path() / "made.txt"));
}

// The sandbox ids runsc knows under this test's state folder right now.
std::string running_sandboxes(const fs::path& state) {
  auto root = state / "sandbox" / "runsc";
  if (!fs::exists(root)) return "";
  return run_command({"runsc", "--root=" + root.string(), "list", "-quiet"}, std::chrono::seconds(30)).output;
}

// `sandci run` starts the first job's sandbox before the checkout is written
// (once the repository's mirror exists; with --dirty at once) and the job runs
// in it: a fresh sandbox that sees the whole checkout, committed content and
// .git included, and nothing of an earlier job.
TEST_P(CliRunTest, FirstSandboxStartedDuringTheCheckoutSeesTheWholeCheckout) {
  workflow(R"Y(on: push
jobs:
  only:
    runs-on: x
    steps:
      - run: |
          for f in /tmp/mark /etc/mark /workspace/mark; do test -e "$f" && echo "saw $f"; done
          echo mark > /tmp/mark && echo mark > /etc/mark && echo mark > /workspace/mark
          echo "file: $(cat file.txt)"; test -f /workspace/.git/HEAD && echo "has .git"
          echo in-the-job; sleep 3
)Y",
           {{"file.txt", "committed-content\n"}});
  // --dirty (no mirror needed); HEAD the first time (it makes the mirror: the
  // sandbox starts when the job comes); HEAD again (started before the checkout).
  const std::vector<std::vector<std::string>> runs = {{"--dirty"}, {}, {}};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::string seen;
    auto r = run(runs[i], 300s, [&](pid_t, const std::string& output) {
      if (seen.empty() && output.find("in-the-job") != std::string::npos) seen = running_sandboxes(state_.path());
    });
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("saw /"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("[only] file: committed-content"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("[only] has .git"), std::string::npos) << r.output;
    // One sandbox while the job runs (a one-job run starts no extra one), and
    // it is the one started ahead whenever it could be.
    EXPECT_EQ(std::count(seen.begin(), seen.end(), '\n'), 1) << seen;
    if (i != 1) {
      EXPECT_NE(seen.find("sandci-first-"), std::string::npos) << "run " << i << ": " << seen;
    }
  }
  EXPECT_FALSE(fs::exists(repo_.path() / "mark"));
}

// A run that ends before its jobs, after the first sandbox was started (a
// selection naming no job, a broken workflow file) says why and leaves no
// sandbox, bundle or workspace behind (TearDown checks runsc and the workspace).
TEST_P(CliRunTest, RunEndingBeforeItsJobsLeavesNoSandboxStartedAhead) {
  workflow("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ran\n");
  auto made = run({"--warm", "0"});  // makes the mirror: later runs start their first sandbox ahead
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto selected = run({"--job", "nosuch"});
  EXPECT_EQ(selected.exit_code, 2) << selected.output;
  EXPECT_NE(selected.output.find("no triggered workflow has a job named 'nosuch'"), std::string::npos) << selected.output;
  EXPECT_EQ(selected.output.find("[a] ran"), std::string::npos) << selected.output;
  EXPECT_TRUE(fs::is_empty(state_.path() / "sandbox" / "bundles")) << selected.output;
  // A workflow whose file reads fine (so a sandbox is started for job a) but
  // that cannot be prepared: the reusable workflow it calls is not there.
  write_file(repo_.path() / ".sandci/workflows/ci.yml",
             "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ran\n"
             "  b:\n    uses: ./.sandci/workflows/missing.yml\n");
  auto broken = run({"--dirty"});
  EXPECT_EQ(broken.exit_code, 2) << broken.output;
  EXPECT_NE(broken.output.find(".sandci/workflows/ci.yml:8:11: error: cannot read reusable workflow"),
            std::string::npos)
      << broken.output;
  EXPECT_EQ(broken.output.find("[a] ran"), std::string::npos) << broken.output;
  EXPECT_TRUE(fs::is_empty(state_.path() / "sandbox" / "bundles")) << broken.output;
}

// Ctrl-C while the checkout is written (the first sandbox starting beside it):
// exit 130, no job runs, nothing is left.
TEST_P(CliRunTest, InterruptDuringTheCheckoutLeavesNothing) {
  std::map<std::string, std::string> files;
  const std::string block(16 << 10, 'x');
  for (int i = 0; i < 3000; ++i) files["data/" + std::to_string(i) + ".txt"] = std::to_string(i) + block;
  workflow("on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo must-not-run\n", files);
  auto made = run({"--warm", "0", "--job", "nosuch"});  // makes the mirror only
  ASSERT_EQ(made.exit_code, 2) << made.output;
  // Started by hand: the signal goes when the checkout has begun, seen from
  // outside (a file of it in the run's workspace).
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(SANDCI_BINARY, SANDCI_BINARY, "run", repo_.path().c_str(), "--plain", "--state-dir",
          state_.path().c_str(), "--logs", logs_.path().c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool sent = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!sent && std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    for (const auto& dir : fs::directory_iterator(state_.path() / "runs", ec))
      if (fs::exists(dir.path() / "workspace" / "data", ec)) sent = kill(pid, SIGINT) == 0;
    if (!sent) std::this_thread::sleep_for(1ms);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(sent) << "the checkout was never seen";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(read_tree(logs_.path()).find("must-not-run"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(state_.path() / "sandbox" / "bundles"));
}

// What only the Docker backend has: images come from the engine.
class DockerRunTest : public RunTest {};
INSTANTIATE_TEST_SUITE_P(Engine, DockerRunTest, ::testing::Values(Backend::docker), backend_name);

// `container:` and the runs-on label map name engine images (not in sandci's
// image store), and the image's config applies as `docker run` would apply it:
// its Env under the job's env, its User, its WorkingDir made in the container
// (the steps still run in the job's workspace).
TEST_P(DockerRunTest, EngineImagesAndTheirConfigAsDockerRunWould) {
  auto made = docker_image_from_debian("sandci-e2e/configured:1",
                                       {"ENV IMAGE_ONLY=from-image SHARED=from-image HOME=/srv/site", "WORKDIR /srv/site",
                                        "USER www-data"});
  ASSERT_TRUE(made) << made.error();
  workflow(R"Y(
on: push
jobs:
  in-container:
    runs-on: ubuntu-latest
    container: sandci-e2e/configured:1
    env:
      SHARED: from-job
    steps:
      - run: |
          echo "image-only=$IMAGE_ONLY shared=$SHARED user=$(id -un):$(id -u):$(id -g) pwd=$(pwd)"
          test -d /srv/site && echo "workdir made, home=$HOME"
  by-label:
    runs-on: configured-runner
    steps:
      - run: echo "label user=$(id -un) image-only=$IMAGE_ONLY"
)Y");
  auto r = run({"--label", "configured-runner=sandci-e2e/configured:1"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[in-container] image-only=from-image shared=from-job user=www-data:33:33 pwd=/workspace"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[in-container] workdir made, home=/srv/site"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[by-label] label user=www-data image-only=from-image"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("image sandci-e2e/configured:1"), std::string::npos) << r.output;
}

// No engine at the socket: the run fails at once, saying so (no dockerd needed).
TEST(DockerRunErrorsTest, EngineNotRunningIsAClearError) {
  TempDir repo;
  StateDir state;
  make_repo(repo.path(), {{".sandci/workflows/ci.yml",
                           "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: true\n"}});
  auto r = run_command({SANDCI_BINARY, "run", repo.path().string(), "--plain", "--state-dir", state.path().string(),
                        "--backend", "docker", "--docker-socket", (state.path() / "no-engine.sock").string()},
                       60s);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the Docker engine is not running"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no-engine.sock"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sandci::e2e
