#pragma once
// The agent as a real process, for tests: a git daemon on 127.0.0.1 serving the
// repositories, a test forge (HTTP or HTTPS with a test CA) that records every
// status request and answers as the test says, the agent's configuration with
// its secret files, and `sandci serve` started and stopped by pid. Everything
// runs on 127.0.0.1 and is cleaned up when the fixture goes, even after a failure.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/forge/signing.h"
#include "agent/http/http_client.h"
#include "agent/http/http_server.h"
#include "integration/git/git_test_support.h"
#include "support/test_ca.h"
#include "support/time_scale.h"

namespace sandci::agent::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

// Where scripts/test-setup.sh keeps the images that jobs run in.
inline fs::path shared_images_dir() {
  const char* env = std::getenv("SANDCI_TEST_IMAGES");
  return env ? fs::path(env) : fs::path("/var/cache/sandci/image-test-state/images");
}

inline std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_secret(const fs::path& file, const std::string& value) {
  std::ofstream(file) << value << "\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
}

// Polls `done` every 50 ms for at most `limit` (longer in sanitized builds:
// support/time_scale.h).
template <typename Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 120s) {
  const auto end = std::chrono::steady_clock::now() + sandci::testing::scaled(limit);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// A forge API that records what the agent sends it.
class TestForge {
 public:
  struct Request {
    std::string method, target;
    http::Headers headers;
    json body;
  };
  // Answers a request: return a response to override the default 201.
  using Script = std::function<std::optional<http::HttpResponse>(const Request&, int number)>;

  explicit TestForge(const fs::path& tls_dir = {}) {
    http::HttpServerOptions options;
    if (!tls_dir.empty()) {
      sandci::testing::TestCa ca;
      ca.write_ca_cert(tls_dir / "ca.pem");
      ca.issue_server_cert({"127.0.0.1", "localhost"}, tls_dir / "server.pem", tls_dir / "server.key");
      options.tls = http::TlsFiles{tls_dir / "server.pem", tls_dir / "server.key"};
      ca_file_ = tls_dir / "ca.pem";
    }
    auto server = http::HttpServer::start(options, [this](http::HttpRequest request, http::Responder respond) {
      Request recorded{request.method, request.target, request.headers,
                       json::parse(request.body, nullptr, false)};
      std::optional<http::HttpResponse> scripted;
      int number = 0;
      Script script;
      {
        std::lock_guard lock(mutex_);
        number = static_cast<int>(requests_.size()) + 1;
        script = script_;
      }
      if (script) scripted = script(recorded, number);
      const bool hang = scripted && scripted->status == 0;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(recorded);
        if (!scripted || (scripted->status >= 200 && scripted->status < 300)) delivered_.push_back(recorded);
      }
      changed_.notify_all();
      if (hang) {  // never answers: the responder is kept until the forge goes
        std::lock_guard lock(mutex_);
        held_.push_back(std::move(respond));
        return;
      }
      respond(scripted ? *scripted : http::HttpResponse::json(201, "{}"));
    });
    if (!server) throw std::runtime_error("test forge: " + server.error());
    server_ = std::move(*server);
  }

  std::string base_url() const {
    return std::string(ca_file_.empty() ? "http" : "https") + "://127.0.0.1:" + std::to_string(server_->port());
  }
  const fs::path& ca_file() const { return ca_file_; }
  void script(Script script) {
    std::lock_guard lock(mutex_);
    script_ = std::move(script);
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Requests the forge answered 2xx: what it shows.
  std::vector<Request> delivered() const {
    std::lock_guard lock(mutex_);
    return delivered_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Request> requests_, delivered_;
  Script script_;
  std::vector<http::Responder> held_;
  fs::path ca_file_;
  std::unique_ptr<http::HttpServer> server_;
};

// One status as the forge saw it, whatever its API.
struct SeenStatus {
  std::string sha, context, state, description, target_url, auth;
};

inline std::vector<SeenStatus> seen_statuses(const std::vector<TestForge::Request>& requests) {
  std::vector<SeenStatus> out;
  for (const auto& r : requests) {
    if (!r.body.is_object()) continue;
    SeenStatus s;
    s.sha = r.target.substr(r.target.rfind('/') + 1);
    s.context = r.body.value("context", r.body.value("name", ""));
    s.state = r.body.value("state", "");
    s.description = r.body.value("description", "");
    s.target_url = r.body.value("target_url", "");
    s.auth = r.headers.get("Authorization").value_or(r.headers.get("PRIVATE-TOKEN").value_or(""));
    out.push_back(s);
  }
  return out;
}

// The states one context went through, in order.
inline std::vector<std::string> states_of(const std::vector<SeenStatus>& seen, const std::string& context) {
  std::vector<std::string> states;
  for (const auto& s : seen)
    if (s.context == context) states.push_back(s.state);
  return states;
}

// `sandci serve` as a child process; stopped (SIGKILL if it must) when it goes.
class AgentProcess {
 public:
  AgentProcess() = default;
  AgentProcess(const fs::path& config, const fs::path& log, std::vector<std::string> env = {}) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      for (auto& e : env) putenv(e.data());
      execl(SANDCI_BINARY, SANDCI_BINARY, "serve", "--config", config.c_str(), nullptr);
      _exit(127);
    }
  }
  ~AgentProcess() { kill_now(); }
  AgentProcess(AgentProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  AgentProcess& operator=(AgentProcess&& other) noexcept {
    kill_now();
    pid_ = std::exchange(other.pid_, -1);
    return *this;
  }
  pid_t pid() const { return pid_; }
  // SIGTERM, then waits; returns the exit code (-1 if it had to be killed).
  int terminate(std::chrono::seconds limit = 120s) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    return wait_exit(limit);
  }
  int wait_exit(std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + sandci::testing::scaled(limit);
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(50ms);
    }
    kill_now();
    return -1;
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// A systemd notification socket the test reads (what sd_notify sends).
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    timeval tv{0, 100'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() {
    close(fd_);
    std::error_code ec;
    fs::remove(path_, ec);
  }
  // Every message received so far, oldest first.
  std::vector<std::string> messages() {
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      received_.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return received_;
  }
  bool saw(const std::string& text) {
    for (const auto& m : messages())
      if (m.find(text) != std::string::npos) return true;
    return false;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  int fd_ = -1;
  std::vector<std::string> received_;
};

struct RepoSetup {
  std::string name = "alice/hello";  // also the folder under the git daemon's base
  std::string forge = "github";
  std::string extra;  // more YAML under the repository entry
};

// A temp folder holding the git server, the forge, the agent's config and state.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(shared_images_dir())) << "test images missing: run scripts/test-setup.sh";
    fs::create_directories(dir_.path() / "git");
    fs::create_directories(dir_.path() / "secrets");
    fs::create_directories(state() / "images");
    fs::remove(state() / "images");
    fs::create_directory_symlink(shared_images_dir(), state() / "images");
    port_ = git::testing::free_port();
    write_secret(dir_.path() / "secrets/webhook", kWebhookSecret);
    write_secret(dir_.path() / "secrets/token", kApiToken);
    write_secret(dir_.path() / "secrets/admin", kAdminToken);
    write_secret(dir_.path() / "secrets/deploy", kJobSecret);
  }
  void TearDown() override {
    agent_.kill_now();
    // No sandbox of this test may be left behind.
    const fs::path root = state() / "sandbox" / "runsc";
    if (fs::exists(root)) {
      auto r = git::testing::run({"runsc", "--root=" + root.string(), "list", "-quiet"});
      EXPECT_EQ(r.output, "") << "sandboxes left behind";
    }
    const std::string log = slurp(log_file());
    for (const char* secret : {kWebhookSecret, kApiToken, kAdminToken, kJobSecret})
      EXPECT_EQ(log.find(secret), std::string::npos) << "a secret reached the agent's log";
    if (HasFailure()) std::cerr << "---- agent log ----\n" << log << "-------------------\n";
  }

  static constexpr const char* kWebhookSecret = "webhook-secret-6d1f0a";
  static constexpr const char* kApiToken = "forge-token-93b2c7";
  static constexpr const char* kAdminToken = "admin-token-51e8aa";
  static constexpr const char* kJobSecret = "deploy-secret-77f3d2";

  fs::path state() const { return dir_.path() / "state"; }
  fs::path log_file() const { return dir_.path() / "agent.log"; }
  std::string agent_url() const {
    return std::string(agent_ca_.empty() ? "http" : "https") + "://127.0.0.1:" + std::to_string(port_);
  }

  // The agent serves HTTPS with a certificate from a test CA; the test's client
  // trusts that CA. Returns the config lines.
  std::string serve_tls() {
    const fs::path tls = dir_.path() / "agent-tls";
    fs::create_directories(tls);
    sandci::testing::TestCa ca;
    ca.write_ca_cert(tls / "ca.pem");
    ca.issue_server_cert({"127.0.0.1"}, tls / "server.pem", tls / "server.key");
    fs::permissions(tls / "server.key", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    agent_ca_ = tls / "ca.pem";
    http::ClientOptions options;
    options.ca_file = agent_ca_;
    client_ = http::HttpClient(options);
    return "tls: {cert: " + (tls / "server.pem").string() + ", key: " + (tls / "server.key").string() + "}\n";
  }

  // A repository on the git daemon with `files` committed and pushed to main.
  std::string make_repo(const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
    repos_.emplace_back(std::make_unique<git::testing::RepoOnServer>(dir_.path() / "git", name));
    const std::string sha = repos_.back()->commit(files, "first commit");
    repos_.back()->push("HEAD:refs/heads/main");
    if (!daemon_) daemon_ = std::make_unique<git::testing::GitDaemon>(dir_.path() / "git");
    return sha;
  }
  git::testing::RepoOnServer& repo(std::size_t i = 0) { return *repos_.at(i); }
  std::string clone_url(const std::string& name) const { return daemon_->url(name); }

  // Writes the agent's config for `repos` (statuses to `forge`).
  void write_config(const TestForge& forge, const std::vector<RepoSetup>& repos, const std::string& extra = "") {
    std::string yaml = "listen: 127.0.0.1:" + std::to_string(port_) + "\npublic_url: " + agent_url() +
                       "\nstate_dir: " + state().string() + "\ncapacity: 2\nlog_level: debug\n" +
                       "admin_token: {file: " + (dir_.path() / "secrets/admin").string() + "}\n" + extra;
    if (!forge.ca_file().empty()) yaml += "status: {ca_file: " + forge.ca_file().string() + "}\n";
    yaml += "repositories:\n";
    for (const auto& r : repos) {
      const std::string api = r.forge == "gitlab" ? "/api/v4" : r.forge == "github" ? "/api/v3" : "/api/v1";
      yaml += "  - name: " + r.name + "\n    forge: " + r.forge + "\n    api_url: " + forge.base_url() + api +
              "\n    webhook_secret: {file: " + (dir_.path() / "secrets/webhook").string() + "}" +
              "\n    api_token: {file: " + (dir_.path() / "secrets/token").string() + "}" +
              "\n    clone_url: " + clone_url(r.name) +
              "\n    secrets: {DEPLOY_KEY: {file: " + (dir_.path() / "secrets/deploy").string() + "}}\n" +
              (r.forge == "gitlab" ? "    project_id: 42\n" : "") +
              // Public unless the test says otherwise: most tests read pages without a token.
              (r.extra.find("pages:") == std::string::npos ? "    pages: public\n" : "") + r.extra;
    }
    std::ofstream(dir_.path() / "agent.yml") << yaml;
  }

  void start_agent(std::vector<std::string> env = {}) {
    agent_ = AgentProcess(dir_.path() / "agent.yml", log_file(), std::move(env));
    ASSERT_TRUE(eventually([&] { return get("/healthz").status == 200; }, 30s)) << slurp(log_file());
  }

  http::ClientResponse get(const std::string& path) {
    http::ClientRequest request;
    request.url = agent_url() + path;
    request.timeout = 5s;
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }

  // POSTs `body` to /webhook with the headers `forge` would send.
  http::ClientResponse deliver(forge::ForgeKind kind, const std::string& event, const std::string& delivery,
                               const std::string& body, const std::string& secret = kWebhookSecret,
                               bool gitlab_signed = false) {
    http::ClientRequest request;
    request.method = "POST";
    request.url = agent_url() + "/webhook";
    request.body = body;
    request.timeout = 15s;
    request.headers.set("Content-Type", "application/json");
    for (const auto& [name, value] :
         forge::webhook_headers(kind, event, delivery, body, secret, std::chrono::system_clock::now(), gitlab_signed))
      request.headers.add(name, value);
    auto r = client_.send(request);
    return r ? *r : http::ClientResponse{0, {}, r.error()};
  }

  // A GitHub push of `sha` to `branch` of `repo`.
  static std::string github_push(const std::string& repo, const std::string& clone, const std::string& sha,
                                 const std::string& branch = "main") {
    return json{{"ref", "refs/heads/" + branch},
                {"before", std::string(40, '0')},
                {"after", sha},
                {"created", true},
                {"deleted", false},
                {"repository",
                 {{"full_name", repo}, {"name", repo.substr(repo.find('/') + 1)}, {"clone_url", clone},
                  {"owner", {{"login", repo.substr(0, repo.find('/'))}}}}},
                {"head_commit", {{"id", sha}, {"message", "a commit\n\nwith a body"}}},
                {"pusher", {{"name", "alice"}}},
                {"sender", {{"login", "alice"}}}}
        .dump();
  }

  std::int64_t run_id_of(const http::ClientResponse& accepted) {
    auto body = json::parse(accepted.body, nullptr, false);
    return body.is_object() && body.contains("run") ? body["run"].get<std::int64_t>() : -1;
  }

  std::string run_state(std::int64_t id) {
    auto run = json::parse(get("/api/runs/" + std::to_string(id)).body, nullptr, false);
    return run.is_object() ? run.value("state", "") : "";
  }

  bool run_finished(std::int64_t id) {
    const std::string s = run_state(id);
    return s == "success" || s == "failure" || s == "error" || s == "cancelled";
  }

  git::testing::TempDir dir_;
  fs::path agent_ca_;
  int port_ = 0;
  std::vector<std::unique_ptr<git::testing::RepoOnServer>> repos_;
  std::unique_ptr<git::testing::GitDaemon> daemon_;
  http::HttpClient client_;
  AgentProcess agent_;
};

// A diamond: setup -> (left, right) -> join, each printing something.
inline const char* kDiamond = R"(name: ci
on: [push, pull_request]
jobs:
  setup:
    runs-on: linux
    steps:
      - run: echo setup-ran
  left:
    needs: setup
    runs-on: linux
    steps:
      - run: echo left-ran
  right:
    needs: setup
    runs-on: linux
    steps:
      - run: echo right-ran
  join:
    needs: [left, right]
    runs-on: linux
    steps:
      - run: echo join-ran
)";

}  // namespace sandci::agent::testing
