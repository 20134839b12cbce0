// `sandci actions add|list` end to end: the real binary, a private --state-dir, and
// a git daemon on 127.0.0.1 serving an action repository made here. What `add`
// puts in the cache is what an agent without network then runs with.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent/runner/remote_actions.h"
#include "integration/git/git_test_support.h"
#include "support/cli_support.h"

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::run_sandci;
using sandci::testing::shell_quote;

class CliActionsTest : public ::testing::Test {
 protected:
  fs::path srv() const { return root_.path() / "srv"; }
  fs::path state() const { return root_.path() / "state"; }
  std::string source() const { return "git://127.0.0.1:" + std::to_string(daemon_->port()); }
  std::string where() const {
    return " --source " + shell_quote(source()) + " --state-dir " + shell_quote(state().string());
  }

  git::testing::TempDir root_;
  std::unique_ptr<git::testing::RepoOnServer> repo_ = [this] {
    fs::create_directories(srv() / "acme");
    return std::make_unique<git::testing::RepoOnServer>(srv(), "acme/setup-tool");
  }();
  std::string v1_ = [this] {
    auto sha = repo_->commit({{"action.yml", "name: Set up the tool\nruns:\n  using: composite\n  steps: []\n"}},
                             "first release");
    repo_->push("HEAD:refs/heads/main");
    repo_->push("HEAD:refs/tags/v1");
    return sha;
  }();
  std::unique_ptr<git::testing::GitDaemon> daemon_ = std::make_unique<git::testing::GitDaemon>(srv());
};

TEST_F(CliActionsTest, AddFillsTheCacheThatAnOfflineAgentThenUses) {
  auto added = run_sandci("actions add", "acme/setup-tool@v1" + where(), root_.path());
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, v1_ + " acme/setup-tool@v1 (" + source() + "/acme/setup-tool)\n");
  EXPECT_TRUE(fs::exists(state() / "actions" / "trees" / "acme" / "setup-tool" / v1_ / "action.yml"));

  auto listed = run_sandci("actions list", where(), root_.path());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("acme/setup-tool  " + source() + "/acme/setup-tool\n"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("  tag    v1  " + v1_ + "  checked out\n"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("  branch main  " + v1_ + "  checked out\n"), std::string::npos) << listed.out;

  daemon_->stop();
  ActionsOptions options;
  options.state_dir = state();
  options.source = source();
  ActionCache cache(options);
  RunActionSource run(cache);
  auto fetched = run.fetch(*scheduler::parse_uses("acme/setup-tool@v1"));
  ASSERT_TRUE(fetched) << fetched.error();
  EXPECT_EQ(fetched->commit, v1_);
  ASSERT_EQ(run.resolutions().size(), 1u);
  EXPECT_TRUE(run.resolutions()[0].from_cache);

  // Adding needs the source: the cached copy is no success, but is mentioned.
  auto offline = run_sandci("actions add", "acme/setup-tool@v1" + where(), root_.path());
  EXPECT_EQ(offline.exit_code, 1);
  EXPECT_NE(offline.err.find("cannot reach " + source() + "/acme/setup-tool"), std::string::npos) << offline.err;
  EXPECT_NE(offline.err.find("the cache still has acme/setup-tool@v1 at " + v1_), std::string::npos) << offline.err;
}

TEST_F(CliActionsTest, ListOfAnEmptyCacheSaysHowToFillIt) {
  auto listed = run_sandci("actions list", where(), root_.path());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("no actions cached"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("sandci actions add owner/repo@ref"), std::string::npos) << listed.out;
}

TEST_F(CliActionsTest, ClearErrors) {
  auto malformed = run_sandci("actions add", "acme-setup-tool" + where(), root_.path());
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_EQ(malformed.err,
            "sandci actions: 'acme-setup-tool' must be owner/repo@ref (a tag, branch or commit), like "
            "actions/checkout@v4\n");
  EXPECT_FALSE(fs::exists(state())) << "a usage error touches nothing";

  auto unknown = run_sandci("actions add", "acme/setup-tool@v9" + where(), root_.path());
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "sandci actions: acme/setup-tool has no tag, branch or commit 'v9' (" + source() +
                             "/acme/setup-tool)\n");

  const std::string nowhere = "git://127.0.0.1:" + std::to_string(git::testing::free_port());
  auto unreachable = run_sandci(
      "actions add", "acme/setup-tool@v1 --source " + nowhere + " --state-dir " + shell_quote(state().string()),
      root_.path());
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("cannot fetch acme/setup-tool@v1 from " + nowhere + "/acme/setup-tool: unreachable"),
            std::string::npos)
      << unreachable.err;

  auto bad_source = run_sandci("actions add", "acme/setup-tool@v1 --source ftp://example.org", root_.path());
  EXPECT_EQ(bad_source.exit_code, 2);
  EXPECT_NE(bad_source.err.find("--source: 'ftp://example.org' must be an https, ssh, git or file URL"),
            std::string::npos)
      << bad_source.err;
}

TEST_F(CliActionsTest, ConfigGivesTheSourceAndStateFolder) {
  const fs::path config = root_.path() / "agent.yml";
  for (const char* name : {"hook", "token"}) {
    std::ofstream(root_.path() / name) << name << "-value\n";
    ::chmod((root_.path() / name).c_str(), 0600);
  }
  std::ofstream(config) << "public_url: https://ci.example.org\n"
                        << "state_dir: " << state().string() << "\n"
                        << "actions:\n  source: " << source() << "\n"
                        << "repositories:\n"
                        << "  - name: alice/hello\n    forge: github\n"
                        << "    webhook_secret: {file: hook}\n    api_token: {file: token}\n";
  auto added = run_sandci("actions add", "acme/setup-tool@main --config " + shell_quote(config.string()),
                          root_.path());
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(added.out, v1_ + " acme/setup-tool@main (" + source() + "/acme/setup-tool)\n");
  EXPECT_TRUE(fs::is_directory(state() / "actions" / "trees" / "acme" / "setup-tool" / v1_));

  std::ofstream(config, std::ios::app) << "actoins: {}\n";
  auto bad = run_sandci("actions list", "--config " + shell_quote(config.string()), root_.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown key 'actoins' in the configuration (did you mean 'actions'?)"), std::string::npos)
      << bad.err;
}

TEST_F(CliActionsTest, RunRefusesABadActionsSourceBeforeDoingAnything) {
  auto run = run_sandci("run", "--actions-source ftp://example.org --state-dir " + shell_quote(state().string()),
                        root_.path());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("sandci run: --actions-source: 'ftp://example.org' must be an https, ssh, git or file URL"),
            std::string::npos)
      << run.err;
  EXPECT_FALSE(fs::exists(state() / "runs"));
}

}  // namespace
}  // namespace sandci::agent
