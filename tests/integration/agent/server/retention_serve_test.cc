// Retention in the real daemon: real runs in gVisor fill a 1 MiB budget with their
// (compressed) logs; a restart's pass removes exactly the runs that must go, keeps
// their rows as summaries or deletes them as configured, removes a stale mirror, and
// the pages serve the compressed logs of the runs kept as text; a remote action's tree
// and mirror no run used for retention.actions_days are removed, and fetched again by
// the next run that uses the action.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <regex>

#include "git/url.h"
#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

// A job whose log is about 540 KB of base64 noise (about 400 KB once gzipped: noise
// does not compress), so two runs fit in 1 MiB and three do not.
const char* kNoisy = R"(name: noisy
on: push
jobs:
  build:
    runs-on: linux
    steps:
      - name: Announce
        run: echo "noise-start"
      - name: Make noise
        run: head -c 400000 /dev/urandom | base64 -w 76
      - run: echo "noise-end"
)";

// A workflow using a composite action of another repository, served by the test's
// git daemon as the agent's actions source.
const char* kGreetAction = R"(name: Greet
description: Says hello
inputs:
  who:
    description: whom to greet
    default: world
runs:
  using: composite
  steps:
    - run: echo "hello ${{ inputs.who }}"
      shell: bash
)";
const char* kUsesGreet = R"(name: greet
on: push
jobs:
  hello:
    runs-on: linux
    steps:
      - uses: acme/greet@main
        with:
          who: retention
)";

// Makes a folder look last used `days` ago (its modification time is its last use).
void age(const fs::path& path, int days) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const timespec at{static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count() -
                                        days * 86400LL),
                    0};
  const timespec times[2] = {at, at};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

const std::string kLogKey = "%2Egithub%2Fworkflows%2Fnoisy.yml%2Fbuild";

class RetentionServeTest : public AgentTest {
 protected:
  fs::path run_dir(std::int64_t id) const { return state() / "runs" / std::to_string(id); }

  std::uintmax_t run_bytes(std::int64_t id) const {
    std::uintmax_t total = 0;
    for (const auto& entry : fs::recursive_directory_iterator(run_dir(id)))
      if (entry.is_regular_file()) total += entry.file_size();
    return total;
  }

  // The job logs of a run by extension (".log", ".gz").
  std::size_t logs_with(std::int64_t id, const std::string& extension) const {
    std::size_t n = 0;
    for (const auto& entry : fs::recursive_directory_iterator(run_dir(id) / "logs"))
      if (entry.is_regular_file() && entry.path().extension() == extension) ++n;
    return n;
  }

  // Pushes `sha` `count` times, one run after the other, each finishing with success.
  std::vector<std::int64_t> run_noisy(const std::string& sha, int count) {
    std::vector<std::int64_t> runs;
    for (int i = 0; i < count; ++i) {
      auto accepted = deliver(ForgeKind::github, "push", "d-" + std::to_string(i + 1),
                              github_push("alice/hello", clone_url("alice/hello"), sha));
      EXPECT_EQ(accepted.status, 202) << accepted.body;
      const std::int64_t run = run_id_of(accepted);
      EXPECT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
      EXPECT_EQ(run_state(run), "success");
      runs.push_back(run);
    }
    return runs;
  }

  json run_json(std::int64_t id) { return json::parse(get("/api/runs/" + std::to_string(id)).body, nullptr, false); }

  http::ClientResponse raw_log(std::int64_t id) {
    return get("/runs/" + std::to_string(id) + "/jobs/" + kLogKey + "/log?raw=1");
  }

  // A mirror of a repository no agent config names, as an earlier config left it.
  fs::path plant_stale_mirror() {
    const fs::path mirror = state() / "git" / git::mirror_dir_name("git://127.0.0.1:9/retired/old.git");
    fs::create_directories(mirror / "objects");
    std::ofstream(mirror / "HEAD") << "ref: refs/heads/main\n";
    std::ofstream(mirror / "objects" / "pack-noise") << std::string(4096, 'x');
    return mirror;
  }

  // (Re)starts the agent and waits for its start-up retention pass.
  void restart_for_a_pass() {
    if (agent_.pid() > 0) {
      ASSERT_EQ(agent_.terminate(), 0);
    }
    const auto passes_before = count_passes();
    start_agent();
    ASSERT_TRUE(eventually([&] { return count_passes() > passes_before; }, 60s)) << slurp(log_file());
  }

  std::size_t count_passes() const {
    const std::string log = slurp(log_file());
    std::size_t n = 0;
    for (auto at = log.find("event=retention_pass "); at != std::string::npos; at = log.find("event=retention_pass ", at + 1))
      ++n;
    return n;
  }

  // Each run must take between 380 and 520 KB, so that two fit in 1 MiB and three do not.
  void expect_run_sizes_fit_the_premise(const std::vector<std::int64_t>& runs) {
    for (auto id : runs) {
      EXPECT_GT(run_bytes(id), 380'000u) << "run " << id;
      EXPECT_LT(run_bytes(id), 520'000u) << "run " << id;
    }
  }

  static void exec_sql(const fs::path& db_file, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
};

TEST_F(RetentionServeTest, OverBudgetTheOldestRunsBecomeSummariesAndTheRestStayReadable) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/noisy.yml", kNoisy}});
  write_config(forge, {{}}, "retention: {max_age_days: 30, disk_budget_mib: 1, keep_rows: summary}\n");
  start_agent();
  const auto runs = run_noisy(sha, 4);
  ASSERT_EQ(runs.size(), 4u);

  // Each log was compressed when its run ended, and is served as text.
  for (auto id : runs) {
    EXPECT_EQ(logs_with(id, ".log"), 0u) << "run " << id;
    EXPECT_EQ(logs_with(id, ".gz"), 1u) << "run " << id;
  }
  expect_run_sizes_fit_the_premise(runs);
  auto raw = raw_log(runs[0]);
  EXPECT_EQ(raw.status, 200);
  EXPECT_NE(raw.body.find("noise-start"), std::string::npos);
  EXPECT_NE(raw.body.find("noise-end"), std::string::npos);
  EXPECT_EQ(raw.headers.get("Content-Type").value_or(""), "text/plain; charset=utf-8");

  const fs::path stale = plant_stale_mirror();
  const fs::path configured = state() / "git" / git::mirror_dir_name(clone_url("alice/hello"));
  ASSERT_TRUE(fs::exists(configured));
  restart_for_a_pass();

  // The two oldest runs go: their folders, not their rows.
  for (auto id : {runs[0], runs[1]}) {
    EXPECT_FALSE(fs::exists(run_dir(id))) << "run " << id;
    const json run = run_json(id);
    ASSERT_TRUE(run.is_object()) << "run " << id;
    EXPECT_EQ(run.value("state", ""), "success");
    EXPECT_GT(run.value("expired_ms", std::int64_t{0}), 0) << "run " << id;
    EXPECT_EQ(run["jobs"].size(), 1u);
    auto gone = raw_log(id);
    EXPECT_EQ(gone.status, 410);
    EXPECT_TRUE(std::regex_search(gone.body, std::regex(R"(logs removed by retention on \d{4}-\d\d-\d\d)")))
        << gone.body;
    auto page = get("/runs/" + std::to_string(id));
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("logs removed by retention on"), std::string::npos);
  }
  // The two newest stay whole, their compressed logs served as text and as a page.
  for (auto id : {runs[2], runs[3]}) {
    EXPECT_TRUE(fs::exists(run_dir(id))) << "run " << id;
    EXPECT_EQ(run_json(id).value("expired_ms", std::int64_t{-1}), 0);
    auto kept = raw_log(id);
    EXPECT_EQ(kept.status, 200);
    EXPECT_NE(kept.body.find("noise-end"), std::string::npos);
    auto page = get("/runs/" + std::to_string(id) + "/jobs/" + kLogKey + "/log");
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("noise-end"), std::string::npos);
    EXPECT_EQ(page.body.find("logs removed by retention"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(configured));

  const std::string metrics = get("/metrics").body;
  EXPECT_NE(metrics.find("\nsandci_retention_removed_runs_total 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nsandci_retention_removed_mirrors_total 1\n"), std::string::npos) << metrics;
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(RetentionServeTest, RowsRemovedWhenConfiguredAndAnOldRunGoesByAgeFirst) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/noisy.yml", kNoisy}});
  write_config(forge, {{}}, "retention:\n  max_age_days: 30\n  disk_budget_mib: 1\n  keep_rows: remove\n");
  start_agent();
  const auto runs = run_noisy(sha, 3);
  ASSERT_EQ(runs.size(), 3u);
  expect_run_sizes_fit_the_premise(runs);
  ASSERT_EQ(agent_.terminate(), 0);
  // The middle run finished 40 days ago: it goes for its age, and then the other two fit.
  exec_sql(state() / "agent.db", "UPDATE runs SET finished_ms = finished_ms - 40 * 86400000 WHERE id = " +
                                     std::to_string(runs[1]));
  restart_for_a_pass();

  EXPECT_EQ(get("/api/runs/" + std::to_string(runs[1])).status, 404);
  EXPECT_FALSE(fs::exists(run_dir(runs[1])));
  EXPECT_EQ(raw_log(runs[1]).status, 404);
  for (auto id : {runs[0], runs[2]}) {
    EXPECT_TRUE(fs::exists(run_dir(id))) << "run " << id;
    EXPECT_EQ(raw_log(id).status, 200) << "run " << id;
  }
  // The delivery of the removed run still dedupes a redelivery.
  auto again = deliver(ForgeKind::github, "push", "d-2", github_push("alice/hello", clone_url("alice/hello"), sha));
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("duplicate"), std::string::npos) << again.body;
  EXPECT_NE(slurp(log_file()).find("event=retention_removed run=" + std::to_string(runs[1]) + " reason=age"),
            std::string::npos);
  EXPECT_EQ(agent_.terminate(), 0);
}

TEST_F(RetentionServeTest, ARemoteActionUnusedForTheAgeIsRemovedAndFetchedAgainByTheNextRun) {
  TestForge forge;
  const std::string action_sha = make_repo("acme/greet", {{"action.yml", kGreetAction}});
  const std::string sha = make_repo("alice/hello", {{".github/workflows/greet.yml", kUsesGreet}});
  const std::string action_url = clone_url("acme/greet");
  const std::string source = action_url.substr(0, action_url.size() - std::string("/acme/greet").size());
  write_config(forge, {{}}, "actions:\n  source: " + source + "\nretention: {actions_days: 30}\n");
  start_agent();
  auto run_once = [&](const std::string& delivery) {
    auto accepted = deliver(ForgeKind::github, "push", delivery,
                            github_push("alice/hello", clone_url("alice/hello"), sha));
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    const std::int64_t run = run_id_of(accepted);
    ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
    EXPECT_EQ(run_state(run), "success");
    auto job_log = get("/runs/" + std::to_string(run) + "/jobs/%2Egithub%2Fworkflows%2Fgreet.yml%2Fhello/log?raw=1");
    EXPECT_NE(job_log.body.find("hello retention"), std::string::npos) << job_log.body;
  };
  run_once("d-1");
  const fs::path tree = state() / "actions" / "trees" / "acme" / "greet" / action_sha;
  const fs::path mirror = state() / "actions" / "mirrors" / git::mirror_dir_name(action_url);
  ASSERT_TRUE(fs::exists(tree / "action.yml"));
  ASSERT_TRUE(fs::exists(mirror / "HEAD"));

  // Used just now: a pass keeps both.
  restart_for_a_pass();
  EXPECT_TRUE(fs::exists(tree / "action.yml"));
  EXPECT_TRUE(fs::exists(mirror / "HEAD"));

  // Forty days later, nothing has used them: not by their folders' stamps, nor by the
  // store's record of the run.
  ASSERT_EQ(agent_.terminate(), 0);
  age(tree, 40);
  age(mirror, 40);
  exec_sql(state() / "agent.db", "UPDATE action_refs SET at_ms = at_ms - 40 * 86400000");
  restart_for_a_pass();
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_FALSE(fs::exists(mirror));
  EXPECT_FALSE(fs::exists(state() / "actions" / "trees" / "acme" / "greet"));
  const std::string log = slurp(log_file());
  EXPECT_NE(log.find("removed_action_trees=1 removed_action_mirrors=1 "), std::string::npos) << log;
  EXPECT_NE(log.find("event=retention_action_removed folder=trees/acme/greet/" + action_sha), std::string::npos);
  EXPECT_NE(log.find("event=retention_action_removed folder=mirrors/" + mirror.filename().string()),
            std::string::npos);
  const std::string metrics = get("/metrics").body;
  EXPECT_NE(metrics.find("\nsandci_retention_removed_action_trees_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nsandci_retention_removed_action_mirrors_total 1\n"), std::string::npos) << metrics;

  // The next run that uses the action fetches it again.
  run_once("d-2");
  EXPECT_TRUE(fs::exists(tree / "action.yml"));
  EXPECT_TRUE(fs::exists(mirror / "HEAD"));
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
