// The agent's life cycle as systemd drives it: READY and WATCHDOG over
// $NOTIFY_SOCKET, SIGTERM draining running jobs, SIGKILL mid-run and the restart
// that recovers, `--check-config`, and the unit file itself.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

class LifecycleTest : public AgentTest {};

const char* kSleepy = R"(name: ci
on: push
jobs:
  nap:
    runs-on: linux
    steps:
      - run: echo nap-start; sleep 4; echo nap-done
)";

// systemd hears READY once the agent listens, WATCHDOG pings while its loop
// answers, STOPPING on SIGTERM.
TEST_F(LifecycleTest, NotifiesSystemd) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  NotifySocket notify(dir_.path() / "notify.sock");
  start_agent({"NOTIFY_SOCKET=" + notify.path().string(), "WATCHDOG_USEC=1000000"});
  ASSERT_TRUE(eventually([&] { return notify.saw("READY=1"); }, 10s));
  ASSERT_TRUE(eventually([&] { return notify.saw("WATCHDOG=1"); }, 10s)) << slurp(log_file());
  EXPECT_EQ(agent_.terminate(), 0);
  EXPECT_TRUE(notify.saw("STOPPING=1"));
}

// /readyz over the real daemon: ready with every check passing; not ready (503,
// the disk check saying why) while the state disk is below its limit, though
// /healthz still answers.
TEST_F(LifecycleTest, ReadyzChecksTheStoreRunscAndTheStateDisk) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto ready = get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  auto body = json::parse(ready.body);
  EXPECT_TRUE(body["ready"].get<bool>());
  std::vector<std::string> names;
  for (const auto& check : body["checks"]) {
    names.push_back(check["name"]);
    EXPECT_TRUE(check["ok"].get<bool>()) << check.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"store", "runsc", "disk"}));
  EXPECT_EQ(agent_.terminate(), 0);

  write_config(forge, {{}}, "limits: {state_min_free_mib: 1048576}\n");  // 1 TiB free asked
  start_agent();
  auto full = get("/readyz");
  EXPECT_EQ(full.status, 503) << full.body;
  body = json::parse(full.body);
  EXPECT_FALSE(body["ready"].get<bool>());
  EXPECT_FALSE(body["checks"][2]["ok"].get<bool>()) << body.dump();
  EXPECT_NE(body["checks"][2]["detail"].get<std::string>().find("ready above 1024.0 GiB"), std::string::npos)
      << body.dump();
  EXPECT_EQ(get("/healthz").status, 200);
}

// SIGTERM: the running job finishes within the grace period, its statuses go
// out, and the agent exits 0.
TEST_F(LifecycleTest, SigtermLetsRunningJobsFinish) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSleepy}});
  write_config(forge, {{}}, "shutdown_grace_seconds: 60\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "t-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202);
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_state(run) == "running"; }));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(agent_.terminate(), 0);
  const auto seen = seen_statuses(forge.delivered());
  EXPECT_EQ(states_of(seen, "sandci/ci/nap"), (std::vector<std::string>{"pending", "success"}))
      << slurp(log_file());
}

// SIGTERM with a short grace: the job is cancelled, and says so.
TEST_F(LifecycleTest, SigtermCancelsJobsPastTheGracePeriod) {
  TestForge forge;
  const std::string sha = make_repo(
      "alice/hello", {{".github/workflows/ci.yml", "on: push\njobs:\n  long:\n    runs-on: x\n    steps:\n      - run: sleep 120\n"}});
  write_config(forge, {{}}, "shutdown_grace_seconds: 1\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "t-2", github_push("alice/hello", clone_url("alice/hello"), sha));
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_state(run) == "running"; }));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(agent_.terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s) << "the job was not cut off";
  const auto seen = seen_statuses(forge.delivered());
  EXPECT_EQ(states_of(seen, "sandci/ci.yml/long"), (std::vector<std::string>{"pending", "error"}));
}

// SIGKILL mid-run; the next start re-queues the run, reaps the sandbox, and the
// run completes on its second attempt.
TEST_F(LifecycleTest, SigkillMidRunThenRestartRequeues) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSleepy}});
  write_config(forge, {{}}, "interrupted_runs: requeue\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "k-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_state(run) == "running"; }));
  std::this_thread::sleep_for(1s);
  agent_.kill_now();
  start_agent();
  ASSERT_TRUE(eventually([&] { return run_state(run) == "success"; })) << slurp(log_file());
  EXPECT_NE(slurp(log_file()).find("event=run_interrupted run=" + std::to_string(run) + " repository=alice/hello action=requeued"),
            std::string::npos);
  EXPECT_NE(slurp(log_file()).find("attempt=2"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return !states_of(seen_statuses(forge.delivered()), "sandci/ci").empty() &&
                                      states_of(seen_statuses(forge.delivered()), "sandci/ci").back() == "success"; }));
  EXPECT_EQ(agent_.terminate(), 0);
}

// With `interrupted_runs: error` the interrupted run ends in error and its
// unfinished job's status says it was interrupted.
TEST_F(LifecycleTest, SigkillMidRunThenRestartMarksError) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kSleepy}});
  write_config(forge, {{}}, "interrupted_runs: error\n");
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "k-2", github_push("alice/hello", clone_url("alice/hello"), sha));
  const auto run = run_id_of(accepted);
  // Killed once the forge shows the job pending: the job is known, and unfinished.
  ASSERT_TRUE(eventually([&] { return !states_of(seen_statuses(forge.delivered()), "sandci/ci/nap").empty(); }));
  std::this_thread::sleep_for(1s);
  agent_.kill_now();
  start_agent();
  EXPECT_EQ(run_state(run), "error");
  ASSERT_TRUE(eventually([&] {
    auto states = states_of(seen_statuses(forge.delivered()), "sandci/ci/nap");
    return !states.empty() && states.back() == "error";
  }));
  bool said_interrupted = false;
  for (const auto& s : seen_statuses(forge.delivered()))
    said_interrupted |= s.context == "sandci/ci/nap" && s.description.find("Interrupted") != std::string::npos;
  EXPECT_TRUE(said_interrupted);
}

// What the start-up reap cannot remove of a crashed agent's sandbox (here its
// bundle folder, which has a mount inside) is logged as a warning, and the agent
// starts all the same; the next start tries again.
TEST_F(LifecycleTest, StartUpReapFailuresAreLoggedAndTheAgentStartsAnyway) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  const pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);  // the crashed owner: a pid nobody uses now
  const fs::path bundle = state() / "sandbox/bundles" / ("sandci-reaplog-" + std::to_string(dead) + "-1-abcdef");
  fs::create_directories(bundle / "busy");
  std::ofstream(bundle / "owner") << dead << " 1\n";
  ASSERT_EQ(::mount("sandci-test", (bundle / "busy").c_str(), "tmpfs", 0, "size=4k"), 0) << std::strerror(errno);
  struct Unmount {
    fs::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{bundle / "busy"};
  start_agent();
  const std::string said = "event=reap_failed backend=runsc error=\"cannot remove " + bundle.string() + ": ";
  EXPECT_TRUE(eventually([&] { return slurp(log_file()).find(said) != std::string::npos; }, 10s))
      << slurp(log_file());
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(agent_.terminate(), 0);
}

// A run interrupted by SIGKILL is queued again with its statuses pending; when a
// newer push to its branch supersedes it before it runs again, those contexts end
// in error "superseded by <newer sha>" instead of staying pending for ever.
TEST_F(LifecycleTest, RunSupersededWhileQueuedEndsTheStatusesItLeftPending) {
  TestForge forge;
  const char* napping = "name: ci\non: push\njobs:\n  nap:\n    runs-on: linux\n    steps:\n      - run: sleep 30\n";
  const std::string on_main = make_repo("alice/hello", {{".github/workflows/ci.yml", napping}});
  const std::string on_other = repo().commit({{"other.txt", "1\n"}}, "other work");
  repo().push("HEAD:refs/heads/other");
  write_config(forge, {{}}, "interrupted_runs: requeue\nshutdown_grace_seconds: 1\n");
  start_agent();
  // Both run at once; the other branch's has the smaller id, so after the restart
  // (one run at a time) it is claimed first and main's waits in the queue.
  auto other = deliver(ForgeKind::github, "push", "q-1", github_push("alice/hello", clone_url("alice/hello"), on_other, "other"));
  auto main_run = deliver(ForgeKind::github, "push", "q-2", github_push("alice/hello", clone_url("alice/hello"), on_main));
  ASSERT_EQ(other.status, 202) << other.body;
  ASSERT_EQ(main_run.status, 202) << main_run.body;
  auto states_on = [&forge](const std::string& sha, const std::string& context) {
    std::vector<SeenStatus> seen;
    for (const auto& s : seen_statuses(forge.delivered()))
      if (s.sha == sha) seen.push_back(s);
    return states_of(seen, context);
  };
  ASSERT_TRUE(eventually([&] { return !states_on(on_main, "sandci/ci/nap").empty() &&
                                      !states_on(on_other, "sandci/ci/nap").empty(); })) << slurp(log_file());
  agent_.kill_now();

  std::string yaml = slurp(dir_.path() / "agent.yml");
  yaml.replace(yaml.find("capacity: 2"), 11, "capacity: 1");
  std::ofstream(dir_.path() / "agent.yml") << yaml;
  start_agent();
  ASSERT_TRUE(eventually([&] { return run_state(run_id_of(other)) == "running"; })) << slurp(log_file());
  EXPECT_EQ(run_state(run_id_of(main_run)), "queued");

  const std::string newer = repo().commit({{"main.txt", "2\n"}}, "newer");
  repo().push("HEAD:refs/heads/main");
  auto superseding = deliver(ForgeKind::github, "push", "q-3", github_push("alice/hello", clone_url("alice/hello"), newer));
  ASSERT_EQ(superseding.status, 202) << superseding.body;
  EXPECT_EQ(run_state(run_id_of(main_run)), "cancelled");
  for (const std::string context : {"sandci/ci/nap", "sandci/ci"}) {
    ASSERT_TRUE(eventually([&] {
      auto states = states_on(on_main, context);
      return !states.empty() && states.back() == "error";
    })) << context << "\n" << slurp(log_file());
    auto states = states_on(on_main, context);  // pending ("Queued", "Running"...), then error only
    states.pop_back();
    for (const auto& state : states) EXPECT_EQ(state, "pending") << context;
  }
  for (const auto& s : seen_statuses(forge.delivered())) {
    if (s.sha != on_main || s.state != "error") continue;
    EXPECT_EQ(s.description, "superseded by " + newer.substr(0, 12)) << s.context;
    EXPECT_EQ(s.target_url, agent_url() + "/runs/" + std::to_string(run_id_of(main_run))) << s.context;
  }
  for (const auto& state : states_on(on_other, "sandci/ci/nap"))
    EXPECT_EQ(state, "pending") << "the running run of the other branch is not touched";
  EXPECT_EQ(agent_.terminate(), 0);
}

// Statuses the forge could not take before a restart are sent after it.
TEST_F(LifecycleTest, OutboxSurvivesARestart) {
  TestForge forge;
  std::atomic<bool> down{true};
  forge.script([&down](const TestForge::Request&, int) -> std::optional<http::HttpResponse> {
    if (down) return http::HttpResponse::json(503, R"({"message":"unavailable"})");
    return std::nullopt;
  });
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  start_agent();
  auto accepted = deliver(ForgeKind::github, "push", "o-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); }));
  EXPECT_EQ(agent_.terminate(), 0);
  EXPECT_TRUE(forge.delivered().empty());
  down = false;
  start_agent();
  ASSERT_TRUE(eventually([&] {
    auto states = states_of(seen_statuses(forge.delivered()), "sandci/ci");
    return !states.empty() && states.back() == "success";
  }, 180s)) << slurp(log_file());
}

// The agent serves HTTPS itself when the config names a certificate.
TEST_F(LifecycleTest, ServesWebhooksOverTls) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}}, serve_tls());
  start_agent();
  ASSERT_EQ(agent_url().rfind("https://", 0), 0u);
  auto accepted = deliver(ForgeKind::github, "push", "tls-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); }));
  http::HttpClient untrusting;
  http::ClientRequest plain;
  plain.url = agent_url() + "/healthz";
  auto refused = untrusting.send(plain);
  EXPECT_FALSE(refused) << "a client without the CA must not trust the agent";
  EXPECT_EQ(agent_.terminate(), 0);
}

// --check-config reads the file and its secrets as the service would.
TEST_F(LifecycleTest, CheckConfig) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  auto ok = git::testing::run({SANDCI_BINARY, "serve", "--check-config", "--config", (dir_.path() / "agent.yml").string()});
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("1 repository"), std::string::npos) << ok.output;
  fs::permissions(dir_.path() / "secrets/token", fs::perms::group_read, fs::perm_options::add);
  auto loose = git::testing::run({SANDCI_BINARY, "serve", "--check-config", "--config", (dir_.path() / "agent.yml").string()});
  EXPECT_EQ(loose.status, 2) << loose.output;
  EXPECT_NE(loose.output.find("readable by group or others"), std::string::npos) << loose.output;
  EXPECT_EQ(loose.output.find(kApiToken), std::string::npos);
  std::ofstream(dir_.path() / "typo.yml") << "listen: 127.0.0.1:1\npublik_url: http://x\n";
  auto typo = git::testing::run({SANDCI_BINARY, "serve", "--check-config", "--config", (dir_.path() / "typo.yml").string()});
  EXPECT_EQ(typo.status, 2);
  EXPECT_NE(typo.output.find("typo.yml:2:1"), std::string::npos) << typo.output;
  EXPECT_NE(typo.output.find("did you mean 'public_url'"), std::string::npos) << typo.output;
}

// docs/agent.example.yml as `sandci serve --check-config` reads it, once the files
// and credentials it names exist (here under a temp folder instead of /etc/sandci).
TEST_F(LifecycleTest, TheDocumentedExampleConfigIsAccepted) {
  const fs::path etc = dir_.path() / "etc-sandci", creds = dir_.path() / "credentials";
  fs::create_directories(etc);
  fs::create_directories(creds);
  for (const char* file : {"hello.webhook", "hello.deploy-key", "website.ssh-key"}) write_secret(etc / file, "value");
  std::ofstream(etc / "known_hosts") << "git.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
  for (const char* name : {"admin-token", "hello-token", "builder-webhook", "builder-token", "website-webhook",
                           "website-token"})
    write_secret(creds / name, std::string("credential-") + name);
  std::string example = slurp(fs::path(SANDCI_SOURCE_DIR) / "docs/agent.example.yml");
  for (std::size_t at; (at = example.find("/etc/sandci")) != std::string::npos;)
    example.replace(at, std::string_view("/etc/sandci").size(), etc.string());
  std::ofstream(dir_.path() / "example.yml") << example;
  auto check = git::testing::run({"env", "CREDENTIALS_DIRECTORY=" + creds.string(), SANDCI_BINARY, "serve",
                                  "--check-config", "--config", (dir_.path() / "example.yml").string()});
  EXPECT_EQ(check.status, 0) << check.output;
  EXPECT_NE(check.output.find("3 repositories"), std::string::npos) << check.output;
}

// The unit file passes systemd's own checks (with ExecStart at the built binary).
TEST_F(LifecycleTest, UnitFileVerifies) {
  if (git::testing::run({"systemd-analyze", "--version"}).status != 0) GTEST_SKIP() << "no systemd-analyze";
  std::string unit = slurp(fs::path(SANDCI_SOURCE_DIR) / "systemd/sandci-agent.service");
  ASSERT_NE(unit.find("Type=notify"), std::string::npos);
  ASSERT_NE(unit.find("WatchdogSec="), std::string::npos);
  ASSERT_NE(unit.find("StateDirectory=sandci"), std::string::npos);
  for (std::size_t at; (at = unit.find("/usr/local/bin/sandci")) != std::string::npos;)
    unit.replace(at, std::string_view("/usr/local/bin/sandci").size(), SANDCI_BINARY);
  const fs::path file = dir_.path() / "sandci-agent.service";
  std::ofstream(file) << unit;
  auto verify = git::testing::run({"systemd-analyze", "verify", "--man=no", file.string()});
  EXPECT_EQ(verify.status, 0) << verify.output;
  EXPECT_EQ(verify.output.find("sandci-agent.service:"), std::string::npos) << verify.output;
}

}  // namespace
}  // namespace sandci::agent::testing
