// actions/cache and actions/checkout through the run engine and real gVisor
// sandboxes: local repositories checked out through the mirror cache as the
// daemon does, the job image from the shared test images.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/runner/cache_store.h"
#include "agent/runner/checkout_action.h"
#include "agent/runner/mirror_checkout.h"
#include "agent/runner/run_engine.h"
#include "integration/git/git_test_support.h"
#include "sandbox/image_store.h"
#include "sandbox/runsc_backend.h"
#include "support/files.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::read_file;
using sandci::testing::write_file;
using git::testing::git;
using git::testing::TempDir;

fs::path shared_images_dir() {
  const char* env = std::getenv("SANDCI_TEST_IMAGES");
  return env ? fs::path(env) : fs::path("/var/cache/sandci/image-test-state/images");
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Commits `files` to the repository at `dir` (created on first use) on its current branch.
std::string commit(const fs::path& dir, const std::map<std::string, std::string>& files, const std::string& message) {
  if (!fs::exists(dir / ".git")) git(dir, {"init", "-q", "-b", "main"});
  for (const auto& [path, content] : files) write_file(dir / path, content);
  git(dir, {"add", "-A"});
  git(dir, {"-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", message});
  std::string sha = git(dir, {"rev-parse", "HEAD"});
  while (!sha.empty() && (sha.back() == '\n' || sha.back() == ' ')) sha.pop_back();
  return sha;
}

class BuiltinActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(shared_images_dir())) << "test images missing: run scripts/test-setup.sh";
    fs::create_directories(state_.path());
    fs::create_directory_symlink(shared_images_dir(), state_.path() / "images");
    sandbox::RunscOptions options;
    options.state_dir = (state_.path() / "sandbox").string();
    auto backend = sandbox::RunscBackend::open(options);
    ASSERT_TRUE(backend) << backend.error().message;
    backend_ = std::move(*backend);
  }

  // Runs the repository's workflows for a push of its HEAD to main; returns the
  // job's log (one job per workflow in these tests).
  std::string run(const std::string& job, RunResult expected = RunResult::success) {
    const fs::path run_dir = state_.path() / "runs" / std::to_string(++runs_);
    std::string sha = git(repo_.path(), {"rev-parse", "HEAD"});
    sha.resize(40);
    auto checked_out = mirrors_.checkout(repo_.path().string(), sha, run_dir / "workspace");
    EXPECT_TRUE(checked_out) << (checked_out ? "" : checked_out.error().to_string());
    if (!checked_out) return "";
    RunSource source{sha, "refs/heads/main", "octo/app", run_dir / "workspace", checked_out->object_dirs};
    RunTrigger trigger;
    auto prepared = prepare_run(source, trigger);
    EXPECT_TRUE(prepared) << (prepared ? "" : prepared.error().messages.front());
    if (!prepared) return "";
    SecretMasker masker;
    sandbox::ImageStore images(state_.path());
    RunEnvironment env;
    env.backend = backend_.get();
    env.images = [&images](std::string_view name) { return images.lookup(name); };
    env.masker = &masker;
    env.run_dir = run_dir;
    env.logs_dir = run_dir / "logs";
    env.run_id = std::to_string(runs_);
    env.cache = &cache_;
    env.checkout = mirror_checkout(mirrors_, [this](std::string_view name) -> std::expected<RepositoryRemote, std::string> {
      if (name == "octo/app") return RepositoryRemote{repo_.path().string(), {}, false};
      if (name == "octo/lib") return RepositoryRemote{lib_.path().string(), {}, false};
      return std::unexpected("unknown repository " + std::string(name));
    });
    std::atomic<bool> cancel{false};
    EXPECT_EQ(execute_run(*prepared, source, trigger, env, cancel), expected);
    return read_file(run_dir / "logs" / (job + ".log"));
  }

  TempDir state_, repo_, lib_;
  std::unique_ptr<sandbox::RunscBackend> backend_;
  git::MirrorCache mirrors_{state_.path() / "git"};
  CacheStore cache_{state_.path() / "cache", 64 << 20};
  int runs_ = 0;
};

constexpr const char* kNpmWorkflow = R"Y(
on: push
jobs:
  install:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: deps
        uses: actions/cache@v4
        with:
          path: |
            node_modules
            ~/.npm
          key: npm-${{ runner.os }}-${{ hashFiles('package-lock.json') }}
          restore-keys: |
            npm-${{ runner.os }}-
      - run: echo "cache-hit=[${{ steps.deps.outputs.cache-hit }}]"
      - name: npm ci
        if: steps.deps.outputs.cache-hit != 'true'
        run: |
          mkdir -p node_modules/left-pad/lib ~/.npm/_cacache
          echo "module.exports = '$(cat package-lock.json)'" > node_modules/left-pad/lib/index.js
          ln -sf left-pad/lib/index.js node_modules/entry.js
          echo "fetched" > ~/.npm/_cacache/index-v5
      - run: |
          echo "module: $(cat node_modules/entry.js)"
          echo "link: $(readlink node_modules/entry.js)"
          echo "npm cache: $(cat ~/.npm/_cacache/index-v5)"
)Y";

TEST_F(BuiltinActionsTest, ASecondRunRestoresTheCacheWithAnExactHit) {
  commit(repo_.path(), {{".github/workflows/ci.yml", kNpmWorkflow}, {"package-lock.json", "lock-1"}}, "first");
  const std::string first = run("install");
  EXPECT_NE(first.find("cache-hit=[false]"), std::string::npos) << first;
  EXPECT_NE(first.find("Cache not found for input keys: npm-Linux-"), std::string::npos) << first;
  EXPECT_NE(first.find("##[post] Post"), std::string::npos) << first;
  EXPECT_NE(first.find("Cache saved with key: npm-Linux-"), std::string::npos) << first;
  ASSERT_EQ(cache_.entries("octo/app").size(), 1u);
  EXPECT_EQ(cache_.entries("octo/app").front().ref, "refs/heads/main");

  const std::string second = run("install");
  EXPECT_NE(second.find("cache-hit=[true]"), std::string::npos) << second;
  EXPECT_NE(second.find("Cache restored from key: npm-Linux-"), std::string::npos) << second;
  EXPECT_NE(second.find("module: module.exports = 'lock-1'"), std::string::npos) << second;
  EXPECT_NE(second.find("link: left-pad/lib/index.js"), std::string::npos) << second;
  EXPECT_NE(second.find("npm cache: fetched"), std::string::npos) << second;
  // An exact hit is not saved again: no post step runs.
  EXPECT_EQ(second.find("##[post]"), std::string::npos) << second;
  EXPECT_EQ(cache_.entries("octo/app").size(), 1u);
}

TEST_F(BuiltinActionsTest, ARestoreKeyIsAPartialHitAndTheNewKeyIsSaved) {
  commit(repo_.path(), {{".github/workflows/ci.yml", kNpmWorkflow}, {"package-lock.json", "lock-1"}}, "first");
  run("install");
  commit(repo_.path(), {{"package-lock.json", "lock-2"}}, "bump a dependency");
  const std::string log = run("install");
  EXPECT_NE(log.find("cache-hit=[false]"), std::string::npos) << log;
  EXPECT_NE(log.find("Cache restored from key: npm-Linux-"), std::string::npos) << log;
  // The install step ran over the restored files and the post step saved the new key.
  EXPECT_NE(log.find("module: module.exports = 'lock-2'"), std::string::npos) << log;
  EXPECT_NE(log.find("Cache saved with key: npm-Linux-"), std::string::npos) << log;
  EXPECT_EQ(cache_.entries("octo/app").size(), 2u);
}

TEST_F(BuiltinActionsTest, RestoreAndSaveStepsWithOutputsAndFailOnMiss) {
  const std::string old_sha = commit(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - id: restore
        uses: actions/cache/restore@v4
        with:
          path: out
          key: build-${{ github.sha }}
          restore-keys: build-
      - run: |
          echo "hit=[${{ steps.restore.outputs.cache-hit }}] primary=[${{ steps.restore.outputs.cache-primary-key == format('build-{0}', github.sha) }}] matched=[${{ steps.restore.outputs.cache-matched-key != '' }}]"
          echo "previous build: $(cat out/sha 2>/dev/null || echo none)"
      - run: mkdir -p out && echo "${{ github.sha }}" > out/sha
      - uses: actions/cache/save@v4
        with:
          path: out
          key: build-${{ github.sha }}
      - uses: actions/cache/restore@v4
        with:
          path: elsewhere
          key: never-saved
          fail-on-cache-miss: true
)Y"}},
                                 "first");
  const std::string first = run("build", RunResult::failure);
  EXPECT_NE(first.find("hit=[false] primary=[true] matched=[false]"), std::string::npos) << first;
  EXPECT_NE(first.find("previous build: none"), std::string::npos) << first;
  EXPECT_NE(first.find("Cache saved with key: build-" + old_sha), std::string::npos) << first;
  EXPECT_NE(first.find("fail-on-cache-miss is set. Input key: never-saved"), std::string::npos) << first;

  commit(repo_.path(), {{"README", "next"}}, "second");
  const std::string second = run("build", RunResult::failure);
  EXPECT_NE(second.find("hit=[false] primary=[true] matched=[true]"), std::string::npos) << second;
  EXPECT_NE(second.find("previous build: " + old_sha), std::string::npos) << second;
}

TEST_F(BuiltinActionsTest, AFailedJobSavesNothingAndBadPathsAreRefused) {
  commit(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/cache@v4
        with:
          path: out
          key: out-1
      - run: mkdir -p out && echo x > out/x && exit 3
)Y"}},
                                 "first");
  const std::string failed = run("build", RunResult::failure);
  EXPECT_NE(failed.find("the job did not succeed: the cache is not saved"), std::string::npos) << failed;
  EXPECT_TRUE(cache_.entries("octo/app").empty());

  commit(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/cache@v4
        with:
          path: /etc
          key: etc
)Y"}},
                                 "second");
  const std::string refused = run("build", RunResult::failure);
  EXPECT_NE(refused.find("path '/etc' is outside the folders a cache may hold"), std::string::npos) << refused;
}

TEST_F(BuiltinActionsTest, CheckoutWithPathRefDepthAndAnotherRepository) {
  commit(repo_.path(), {{"README", "one"}}, "one");
  commit(repo_.path(), {{"README", "two"}}, "two");
  git(repo_.path(), {"checkout", "-q", "-b", "release"});
  commit(repo_.path(), {{"RELEASE", "r1"}}, "release notes");
  git(repo_.path(), {"checkout", "-q", "main"});
  commit(lib_.path(), {{"lib.txt", "the library"}}, "lib");
  commit(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@v4
        with:
          ref: release
          path: rel
          token: placeholder-token
      - run: |
          echo "release file: $(cat rel/RELEASE)"
          echo "rel shallow: $(wc -l < rel/.git/shallow)"
          test -e rel/.git/objects/info/alternates && echo "rel borrows objects"
      - uses: actions/checkout@v4
        with:
          path: full
          fetch-depth: 0
      - run: |
          test ! -e full/.git/shallow && echo "full has the whole history"
          test ! -e full/RELEASE && echo "full is main"
      - run: mkdir -p rel/leftover && echo stale > rel/leftover/file
      - uses: actions/checkout@v4
        with:
          ref: release
          path: rel
      - run: test ! -e rel/leftover && echo "clean emptied rel"
      - uses: actions/checkout@v4
        with:
          repository: octo/lib
          path: vendor/lib
      - run: |
          echo "lib: $(cat vendor/lib/lib.txt)"
          test ! -e vendor/lib/.git/objects/info/alternates && ls vendor/lib/.git/objects/pack/*.pack >/dev/null && echo "lib objects are inside"
)Y"}},
                                 "workflow");
  const std::string log = run("check");
  EXPECT_NE(log.find("the commit is already checked out at /workspace"), std::string::npos) << log;
  EXPECT_NE(log.find("note: 'token' is ignored"), std::string::npos) << log;
  EXPECT_NE(log.find("release file: r1"), std::string::npos) << log;
  EXPECT_NE(log.find("rel shallow: 1"), std::string::npos) << log;
  EXPECT_NE(log.find("rel borrows objects"), std::string::npos) << log;
  EXPECT_NE(log.find("full has the whole history"), std::string::npos) << log;
  EXPECT_NE(log.find("full is main"), std::string::npos) << log;
  EXPECT_NE(log.find("clean emptied rel"), std::string::npos) << log;
  EXPECT_NE(log.find("lib: the library"), std::string::npos) << log;
  EXPECT_NE(log.find("lib objects are inside"), std::string::npos) << log;
}

TEST_F(BuiltinActionsTest, CheckoutRefusesEscapesLfsAndUnknownRepositories) {
  commit(repo_.path(), {{".github/workflows/ci.yml", R"Y(
on: push
jobs:
  escape:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          path: ../outside
  lfs:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          lfs: true
  unknown:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          repository: someone/else
  badref:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: no-such-branch
          path: x
)Y"}},
                                 "workflow");
  run("escape", RunResult::failure);
  const fs::path logs = state_.path() / "runs" / "1" / "logs";
  EXPECT_NE(read_file(logs / "escape.log").find("error: checkout: path '../outside'"), std::string::npos) << read_file(logs / "escape.log");
  EXPECT_NE(read_file(logs / "lfs.log").find("lfs: true is not supported"), std::string::npos) << read_file(logs / "lfs.log");
  EXPECT_NE(read_file(logs / "unknown.log").find("unknown repository someone/else"), std::string::npos)
      << read_file(logs / "unknown.log");
  EXPECT_NE(read_file(logs / "badref.log").find("no branch, tag or commit named 'no-such-branch'"), std::string::npos)
      << read_file(logs / "badref.log");
}

// History limits on the host, checked with git itself.
TEST(CheckoutHistoryTest, FetchDepthLimitsTheHistoryGitShowsAndEmbeddedObjectsSuffice) {
  TempDir repo, state;
  for (int i = 1; i <= 4; ++i) commit(repo.path(), {{"n", std::to_string(i)}}, "commit " + std::to_string(i));
  std::string sha = git(repo.path(), {"rev-parse", "HEAD"});
  sha.resize(40);
  git::MirrorCache mirrors(state.path() / "git");
  const fs::path dir = state.path() / "checkout";
  ASSERT_TRUE(mirrors.checkout(repo.path().string(), sha, dir));
  auto log_count = [&] { return count(git(dir, {"log", "--format=%s"}), "commit "); };
  EXPECT_EQ(log_count(), 4u);
  ASSERT_TRUE(limit_history(dir, sha, 2));
  EXPECT_EQ(log_count(), 2u);
  ASSERT_TRUE(embed_objects(dir, sha, 2));
  EXPECT_FALSE(fs::exists(dir / ".git/objects/info/alternates"));
  EXPECT_EQ(log_count(), 2u);  // the two commits' objects are in the checkout itself
  EXPECT_EQ(git(dir, {"status", "--porcelain"}), "");
  ASSERT_TRUE(limit_history(dir, sha, 0));
  EXPECT_FALSE(fs::exists(dir / ".git/shallow"));
}

}  // namespace
}  // namespace sandci::agent
