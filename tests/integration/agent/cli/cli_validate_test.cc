// Runs the real `sandci validate` on fixture repositories and checks what it
// prints and its exit code.
#include <gtest/gtest.h>

#include "support/cli_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

using sandci::testing::CliOutput;
using TempDir = sandci::testing::CliTempDir;

std::string quote(const std::string& s) { return sandci::testing::shell_quote(s); }

// Runs `sandci validate <args>` in `cwd`, capturing stdout and stderr apart.
CliOutput validate(const std::string& args, const fs::path& cwd = SANDCI_FIXTURES_DIR) {
  return sandci::testing::run_sandci("validate", args, cwd);
}

const std::string kGood = "validate/good";
const std::string kBad = "validate/bad";
// A workflow in the style of popular projects: permissions, schedule, release,
// job-level concurrency and environment; sandci runs the schedule and notes and
// ignores the rest.
const std::string kReal = "validate/real";
const std::string kRealFile = kReal + "/.github/workflows/ci.yml";

// The notes for kRealFile, in order, with `severity` ("note" or "error").
std::string real_notes(const std::string& severity) {
  const std::string at = kRealFile + ":";
  const std::string runs = "is not run by sandci; the workflow runs for push, pull_request, "
                           "workflow_dispatch, schedule\n";
  return at + "13:3: " + severity + ": event 'release' " + runs +
         at + "16:1: " + severity + ": 'permissions' is ignored: jobs get no GitHub token\n" +
         at + "26:5: " + severity + ": 'concurrency' is ignored: sandci applies concurrency "
                                    "groups to whole workflows, not to jobs\n" +
         at + "44:5: " + severity + ": 'environment' is ignored: sandci has no deployment "
                                    "environments (no protection rules, no environment secrets)\n" +
         at + "47:5: " + severity + ": 'permissions' is ignored: jobs get no GitHub token\n" +
         at + "49:7: " + severity + ": 'id-token' is ignored: sandci issues no OIDC tokens\n";
}

TEST(CliValidate, GoodRepositoryPrintsSummary) {
  auto r = validate(kGood);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 2 workflows, 3 jobs\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliValidate, DefaultPathIsTheCurrentFolder) {
  auto r = validate("", fs::path{SANDCI_FIXTURES_DIR} / kGood);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 2 workflows, 3 jobs\n");
}

TEST(CliValidate, SingleFile) {
  auto r = validate(kGood + "/.github/workflows/lint.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 1 workflow, 1 job\n");
}

TEST(CliValidate, BadRepositoryPrintsEveryErrorSortedAndExits2) {
  auto r = validate(kBad);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  const std::string a = kBad + "/.sandci/workflows/a.yml";
  const std::string b = kBad + "/.sandci/workflows/b.yaml";
  EXPECT_EQ(r.err,
            a + ":4:5: error: unknown key 'runs_on' in job 'build' (did you mean 'runs-on'?)\n" +
                a + ":6:15: error: 'uses: docker://node:20' is not supported by sandci: a docker:// "
                    "action pulls an image from a registry, which jobs cannot reach; run the job in an "
                    "image from the agent's store with 'container:' instead\n" +
                a + ":8:20: error: job 'test' needs 'deploy', which is not a job in this workflow\n" +
                a + ":9:12: error: 'steps' must hold at least one step\n" +
                b + ":4:12: error: dependency cycle: a -> b -> a (each job needs the next)\n");
}

TEST(CliValidate, RealisticWorkflowValidatesWithNotes) {
  auto r = validate(kReal);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok: 1 workflow, 2 jobs, 6 notes\n");
  EXPECT_EQ(r.err, real_notes("note"));
}

TEST(CliValidate, StrictTurnsNotesIntoErrors) {
  auto r = validate("--strict " + kReal);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, real_notes("error"));
  // Without notes, --strict changes nothing.
  auto good = validate("--strict " + kGood);
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(good.out, "ok: 2 workflows, 3 jobs\n");
}

TEST(CliValidate, StrictKeepsRealErrorsAsTheyAre) {
  auto r = validate("--strict " + kBad + "/.sandci/workflows/b.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kBad + "/.sandci/workflows/b.yaml:4:12: error: dependency cycle: a -> b -> a "
                          "(each job needs the next)\n");
}

TEST(CliValidate, PlanPrintsNotesAndStillPlans) {
  auto r = sandci::testing::run_sandci("plan", kReal + " --ref refs/tags/v1.0", SANDCI_FIXTURES_DIR);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, real_notes("note"));
  EXPECT_NE(r.out.find("CI (" + kRealFile + "): runs - push of tag 'v1.0'"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("level 1: publish"), std::string::npos) << r.out;
  // A branch the push filter does not name: the workflow loads but does not run.
  auto other = sandci::testing::run_sandci("plan", kReal + " --ref refs/heads/feature", SANDCI_FIXTURES_DIR);
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(other.out.find("does not run - branch 'feature' does not match the 'branches' filter"),
            std::string::npos)
      << other.out;
}

TEST(CliValidate, PathsAreRelativeToTheCurrentFolder) {
  auto r = validate("", fs::path{SANDCI_FIXTURES_DIR} / kBad);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.err.starts_with(".sandci/workflows/a.yml:4:5: error: unknown key 'runs_on'")) << r.err;
}

TEST(CliValidate, BadSingleFile) {
  auto r = validate(kBad + "/.sandci/workflows/b.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, kBad + "/.sandci/workflows/b.yaml:4:12: error: dependency cycle: a -> b -> a "
                          "(each job needs the next)\n");
}

TEST(CliValidate, NoWorkflowFilesNamesTheFoldersSearched) {
  TempDir empty;
  auto r = validate(quote(empty.path().string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no workflow files"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".sandci/workflows/, .forgejo/workflows/, .gitea/workflows/, "
                       ".github/workflows/"),
            std::string::npos)
      << r.err;
}

TEST(CliValidate, MissingPath) {
  auto r = validate("does/not/exist");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "does/not/exist: error: no such file or folder\n");
}

TEST(CliValidate, HostileFileFailsWithAClearError) {
  TempDir repo;
  const fs::path dir = repo.path() / ".github/workflows";
  fs::create_directories(dir);
  {
    std::ofstream out{dir / "bomb.yml"};
    out << "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (char c = 'b'; c <= 'j'; ++c) {
      out << c << ": &" << c << " [";
      for (int i = 0; i < 9; ++i) out << (i ? ", *" : "*") << static_cast<char>(c - 1);
      out << "]\n";
    }
  }
  auto r = validate(quote(repo.path().string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bomb.yml:1:1: error: the document has more than"), std::string::npos)
      << r.err;
}

}  // namespace
