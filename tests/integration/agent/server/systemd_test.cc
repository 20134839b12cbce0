// The agent under systemd's other two hands: socket activation (a listening socket
// handed over as fd 3 with $LISTEN_FDS and $LISTEN_PID, as systemd does for
// sandci-agent.socket) and SIGHUP (`systemctl reload`: the configuration file read
// again, repositories and secrets changed live, running jobs kept).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <regex>

#include "integration/agent/server/agent_fixture.h"

namespace sandci::agent::testing {
namespace {

using forge::ForgeKind;

// A listening TCP socket on 127.0.0.1, any free port: what systemd makes of
// `ListenStream=127.0.0.1:PORT` before it starts the service.
class ListeningSocket {
 public:
  ListeningSocket() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 64) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    socklen_t size = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &size);
    port_ = ntohs(addr.sin_port);
  }
  ~ListeningSocket() { close(fd_); }
  int fd() const { return fd_; }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// `sandci serve` started the way systemd starts a socket-activated service: the
// socket at fd 3, LISTEN_FDS=1, and LISTEN_PID set to the child's own pid between
// fork and exec. `listen_pid_offset` != 0 names another process (the socket is
// then not for this one).
class ActivatedAgent {
 public:
  ActivatedAgent(const fs::path& config, const fs::path& log, int socket_fd, int listen_pid_offset = 0) {
    pid_ = fork();
    if (pid_ == 0) {
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(out, 1);
      dup2(out, 2);
      if (socket_fd == 3) fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep close-on-exec
      else dup2(socket_fd, 3);                  // dup2 clears close-on-exec on the copy
      const std::string pid = "LISTEN_PID=" + std::to_string(getpid() + listen_pid_offset);
      putenv(const_cast<char*>("LISTEN_FDS=1"));
      putenv(const_cast<char*>(pid.c_str()));
      execl(SANDCI_BINARY, SANDCI_BINARY, "serve", "--config", config.c_str(), nullptr);
      _exit(127);
    }
  }
  ~ActivatedAgent() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  // SIGTERM (or nothing when it already ended), then its exit code; -1 after 120 s.
  int stop() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    return wait_exit();
  }
  int wait_exit() {
    if (pid_ <= 0) return -1;
    int status = 0;
    for (int i = 0; i < 2400; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

class SocketActivationTest : public AgentTest {
 protected:
  // The agent's config names `listen: 127.0.0.1:<config_port>`; requests go to the
  // handed-over socket.
  void use_socket(const ListeningSocket& socket) {
    config_port_ = port_;
    port_ = socket.port();
  }
  int config_port_ = 0;
};

TEST_F(SocketActivationTest, ServesOnTheSocketSystemdPassedNotTheConfiguredAddress) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  ListeningSocket socket;
  use_socket(socket);
  ActivatedAgent agent(dir_.path() / "agent.yml", log_file(), socket.fd());
  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 200; }, 30s)) << slurp(log_file());
  EXPECT_NE(slurp(log_file()).find("event=listening address=127.0.0.1:" + std::to_string(socket.port()) +
                                   " from=systemd"),
            std::string::npos)
      << slurp(log_file());

  // Nothing listens on the configured address.
  http::ClientRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(config_port_) + "/healthz";
  request.timeout = 5s;
  EXPECT_FALSE(client_.send(request).has_value());

  // A signed webhook over the adopted socket runs to the end.
  auto accepted = deliver(ForgeKind::github, "push", "sa-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto run = run_id_of(accepted);
  ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
  EXPECT_EQ(run_state(run), "success");
  EXPECT_EQ(agent.stop(), 0);
}

TEST_F(SocketActivationTest, ServesTlsOnTheAdoptedSocket) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}}, serve_tls());
  ListeningSocket socket;
  use_socket(socket);
  ActivatedAgent agent(dir_.path() / "agent.yml", log_file(), socket.fd());
  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 200; }, 30s)) << slurp(log_file());
  EXPECT_EQ(agent_url().substr(0, 8), "https://");
  EXPECT_NE(slurp(log_file()).find("from=systemd tls=on"), std::string::npos) << slurp(log_file());
  EXPECT_EQ(agent.stop(), 0);
}

// $LISTEN_PID names another process: the socket is not for the agent, which
// binds its configured address instead.
TEST_F(SocketActivationTest, IgnoresSocketsMeantForAnotherProcess) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  ListeningSocket socket;
  ActivatedAgent agent(dir_.path() / "agent.yml", log_file(), socket.fd(), /*listen_pid_offset=*/1);
  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 200; }, 30s)) << slurp(log_file());
  EXPECT_NE(slurp(log_file()).find("from=config"), std::string::npos) << slurp(log_file());
  EXPECT_EQ(agent.stop(), 0);
}

// fd 3 is a file, not a listening socket: the agent refuses to start and says why.
TEST_F(SocketActivationTest, RefusesAPassedDescriptorThatIsNotAListeningSocket) {
  TestForge forge;
  make_repo("alice/hello", {{".github/workflows/ci.yml", kDiamond}});
  write_config(forge, {{}});
  const int file = ::open((dir_.path() / "agent.yml").c_str(), O_RDONLY | O_CLOEXEC);
  ActivatedAgent agent(dir_.path() / "agent.yml", log_file(), file);
  close(file);
  EXPECT_NE(agent.wait_exit(), 0);
  EXPECT_NE(slurp(log_file()).find("fd 3 is not a listening stream socket"), std::string::npos) << slurp(log_file());
}

const char* kNap = R"(name: ci
on: push
jobs:
  nap:
    runs-on: linux
    steps:
      - run: echo nap-start; sleep 8; echo nap-done
)";

const char* kQuick = R"(name: ci
on: push
jobs:
  quick:
    runs-on: linux
    steps:
      - run: echo quick-ran
)";

class ReloadTest : public AgentTest {
 protected:
  struct Repo {
    std::string name, webhook_secret_file;
  };
  // The agent's config with one webhook secret file per repository.
  void write_reload_config(const TestForge& forge, const std::vector<Repo>& repos, int listen_port) {
    std::string yaml = "listen: 127.0.0.1:" + std::to_string(listen_port) + "\npublic_url: " + agent_url() +
                       "\nstate_dir: " + state().string() + "\ncapacity: 2\nlog_level: debug\nrepositories:\n";
    for (const auto& r : repos)
      yaml += "  - name: " + r.name + "\n    forge: github\n    api_url: " + forge.base_url() + "/api/v3" +
              "\n    webhook_secret: {file: " + r.webhook_secret_file + "}" +
              "\n    api_token: {file: " + (dir_.path() / "secrets/token").string() + "}" +
              "\n    clone_url: " + clone_url(r.name) + "\n    pages: public\n";  // the test reads runs without a token
    std::ofstream(dir_.path() / "agent.yml") << yaml;
  }
  std::size_t log_count(const std::string& text) {
    const std::string log = slurp(log_file());
    std::size_t count = 0;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++count;
    return count;
  }
  // SIGHUP, then waits for the agent's log to say the reload ended (`event`).
  void reload_and_wait(const std::string& event) {
    const std::size_t before = log_count(event);
    ASSERT_EQ(::kill(agent_.pid(), SIGHUP), 0);
    ASSERT_TRUE(eventually([&] { return log_count(event) > before; }, 30s)) << slurp(log_file());
  }
  std::string secret_file(const std::string& name, const std::string& value) {
    const fs::path file = dir_.path() / "secrets" / name;
    write_secret(file, value);
    return file.string();
  }
};

constexpr const char* kNewWebhookSecret = "webhook-secret-two-4c9e1b";

// The reload adds a repository and changes another's webhook secret while that
// repository's job runs: the new repository's webhook is taken, the old secret is
// refused and the new one accepted, a key that needs a restart is kept and logged,
// and the running job finishes and posts its status.
TEST_F(ReloadTest, SighupReloadsRepositoriesAndSecretsWithoutDroppingARunningJob) {
  TestForge forge;
  const std::string hello_sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kNap}});
  const std::string tools_sha = make_repo("bob/tools", {{".github/workflows/ci.yml", kQuick}});
  const std::string first_secret = (dir_.path() / "secrets/webhook").string();
  write_reload_config(forge, {{"alice/hello", first_secret}}, port_);
  start_agent();

  auto refused = deliver(ForgeKind::github, "push", "r-1", github_push("bob/tools", clone_url("bob/tools"), tools_sha));
  EXPECT_EQ(refused.status, 401) << "bob/tools is not configured yet";

  auto accepted = deliver(ForgeKind::github, "push", "r-2", github_push("alice/hello", clone_url("alice/hello"), hello_sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const auto running_run = run_id_of(accepted);
  // The job is in its sandbox (it sleeps there for 8 s).
  ASSERT_TRUE(eventually([&] {
    auto run = json::parse(get("/api/runs/" + std::to_string(running_run)).body, nullptr, false);
    return run.is_object() && !run["jobs"].empty() && run["jobs"][0].value("state", "") == "running";
  })) << slurp(log_file());

  write_reload_config(forge,
                      {{"alice/hello", secret_file("webhook-two", kNewWebhookSecret)}, {"bob/tools", first_secret}},
                      git::testing::free_port());
  reload_and_wait("event=config_reloaded");
  const std::string log = slurp(log_file());
  EXPECT_NE(log.find("event=config_reloaded"), std::string::npos);
  EXPECT_NE(log.find("added=\"github:bob/tools\" removed=\"\""), std::string::npos) << log;
  EXPECT_NE(log.find("event=config_needs_restart key=listen"), std::string::npos) << log;
  EXPECT_EQ(get("/healthz").status, 200) << "the agent still listens where it did";

  auto added = deliver(ForgeKind::github, "push", "r-3", github_push("bob/tools", clone_url("bob/tools"), tools_sha));
  EXPECT_EQ(added.status, 202) << added.body;
  // Another branch, so that the run on main is not superseded.
  const std::string feature = github_push("alice/hello", clone_url("alice/hello"), hello_sha, "feature");
  EXPECT_EQ(deliver(ForgeKind::github, "push", "r-4", feature).status, 401) << "the old secret still works";
  auto resigned = deliver(ForgeKind::github, "push", "r-5", feature, kNewWebhookSecret);
  EXPECT_EQ(resigned.status, 202) << resigned.body;

  ASSERT_TRUE(eventually([&] { return run_finished(running_run); })) << slurp(log_file());
  EXPECT_EQ(run_state(running_run), "success") << slurp(log_file());
  for (auto run : {run_id_of(added), run_id_of(resigned)}) {
    ASSERT_TRUE(eventually([&] { return run_finished(run); })) << slurp(log_file());
    EXPECT_EQ(run_state(run), "success");
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : seen_statuses(forge.delivered()))
      if (s.sha == hello_sha && s.context == "sandci/ci/nap" && s.state == "success") return true;
    return false;
  })) << "the job that ran across the reload posted its status";
  EXPECT_EQ(agent_.terminate(), 0);
  EXPECT_EQ(slurp(log_file()).find(kNewWebhookSecret), std::string::npos) << "a reloaded secret reached the log";
}

// A configuration with an error changes nothing: the error is logged at
// file:line:col and the running configuration keeps serving.
TEST_F(ReloadTest, ABrokenConfigurationKeepsTheRunningOne) {
  TestForge forge;
  const std::string sha = make_repo("alice/hello", {{".github/workflows/ci.yml", kQuick}});
  const std::string secret = (dir_.path() / "secrets/webhook").string();
  write_reload_config(forge, {{"alice/hello", secret}}, port_);
  start_agent();

  std::ofstream(dir_.path() / "agent.yml", std::ios::app) << "capacty: 4\n";
  reload_and_wait("event=reload_failed");
  const std::string log = slurp(log_file());
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(event=reload_error error="[^"]*agent\.yml:\d+:\d+)"))) << log;
  EXPECT_NE(log.find("kept the running configuration"), std::string::npos) << log;

  auto accepted = deliver(ForgeKind::github, "push", "b-1", github_push("alice/hello", clone_url("alice/hello"), sha));
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  ASSERT_TRUE(eventually([&] { return run_finished(run_id_of(accepted)); })) << slurp(log_file());
  EXPECT_EQ(run_state(run_id_of(accepted)), "success");

  // Fixed again, the next SIGHUP takes it.
  write_reload_config(forge, {{"alice/hello", secret}}, port_);
  reload_and_wait("event=config_reloaded");
  EXPECT_EQ(agent_.terminate(), 0);
}

}  // namespace
}  // namespace sandci::agent::testing
