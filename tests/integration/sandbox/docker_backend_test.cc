// What only the Docker backend has: the container's settings in the engine,
// clear errors for a broken engine setup, DOCKER_HOST, reaping a crashed owner's
// containers. Against the private dockerd of sandbox_fixture.cc (and a fake
// engine for "API too old").
#include <gmock/gmock.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <thread>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/docker_api.h"
#include "sandbox/docker_sandbox.h"
#include "sandbox/process.h"

namespace sandci::sandbox::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DockerBackendTest : public SandboxTest {
 protected:
  BackendKind kind() const override { return BackendKind::kDocker; }
  static DockerOptions options() {
    DockerOptions o;
    o.socket = docker_socket();
    o.image = kTestImage;
    return o;
  }
};

// Answers every request on a unix socket with one canned HTTP response.
class FakeEngine {
 public:
  explicit FakeEngine(std::string body) : body_(std::move(body)) {
    path_ = dir_.path().string() + "/engine.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0) {
      throw std::runtime_error("fake engine: bind failed");
    }
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        (void)!::read(c, buf, sizeof buf);
        std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
        (void)!::write(c, answer.data(), answer.size());
        ::close(c);
      }
    });
  }
  ~FakeEngine() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  const std::string& path() const { return path_; }

 private:
  TempDir dir_;
  std::string body_, path_;
  int fd_ = -1;
  std::thread thread_;
};

TEST_F(DockerBackendTest, ContainerRunsUnderRunscWithNoNetworkAndDroppedPrivileges) {
  auto spec = default_spec();
  spec.limits.pids = 300;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  auto inspected = docker_backend().client().call_json("GET", "/containers/" + sandbox->id() + "/json", nullptr,
                                                       "inspect");
  ASSERT_TRUE(inspected) << inspected.error().message;
  const auto& host = (*inspected)["HostConfig"];
  EXPECT_EQ(host["Runtime"], "runsc");
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["Memory"], 512ll << 20);
  EXPECT_EQ(host["NanoCpus"], 1000000000ll);
  EXPECT_EQ(host["PidsLimit"], 300);
  EXPECT_EQ(host["CapDrop"], nlohmann::json::array({"ALL"}));
  EXPECT_EQ(host["SecurityOpt"], nlohmann::json::array({"no-new-privileges"}));
  EXPECT_TRUE(host["Tmpfs"].contains("/tmp"));
  // Inside: gVisor's kernel, and exactly the job capability set (CHOWN,
  // DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, NET_BIND_SERVICE, SETFCAP)
  // as in the runsc backend. (gVisor's /proc does not show NoNewPrivs.)
  auto output = sh(*sandbox, "uname -r; grep '^CapBnd' /proc/self/status");
  ASSERT_TRUE(output.status.success()) << describe(output.status) << output.err();
  EXPECT_EQ(output.out(), "4.4.0\nCapBnd:\t00000000800004fb\n");
}

TEST_F(DockerBackendTest, DestructorRemovesTheContainer) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  const std::string id = sandbox->id();
  auto before = docker_backend().client().call("GET", "/containers/" + id + "/json");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200u);
  sandbox.reset();
  auto after = docker_backend().client().call("GET", "/containers/" + id + "/json");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 404u);
  EXPECT_TRUE(host_processes_mentioning(id).empty());
}

TEST_F(DockerBackendTest, EngineNotRunningIsAClearError) {
  TempDir dir;
  DockerOptions o = options();
  o.socket = dir.path().string() + "/docker.sock";
  auto opened = DockerBackend::open(o);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("Docker engine is not running"));
  EXPECT_THAT(opened.error().message, HasSubstr(o.socket));
}

// A socket file left by an engine that stopped: nothing listens, connect is refused.
TEST_F(DockerBackendTest, EngineSocketRefusingIsAClearError) {
  TempDir dir;
  DockerOptions o = options();
  o.socket = dir.path().string() + "/docker.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", o.socket.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // bound, never listening
  auto opened = DockerBackend::open(o);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("Docker engine is not running"));
  EXPECT_THAT(opened.error().message, HasSubstr("refused"));
  EXPECT_THAT(opened.error().message, HasSubstr(o.socket));
}

TEST_F(DockerBackendTest, SocketPermissionDeniedIsAClearError) {
  // Root passes every permission check: ask from a child that became nobody.
  const std::string socket = docker_socket();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string message = "setuid failed";
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      auto answer = DockerClient(socket).call("GET", "/_ping");
      message = answer ? "answered " + std::to_string(answer->status) : answer.error().message;
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  EXPECT_THAT(message, HasSubstr("permission denied on the Docker socket"));
}

TEST_F(DockerBackendTest, ApiTooOldIsAClearError) {
  FakeEngine engine(R"({"Version":"19.03.1","ApiVersion":"1.40"})");
  DockerOptions o = options();
  o.socket = engine.path();
  auto opened = DockerBackend::open(o);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("speaks API 1.40"));
  EXPECT_THAT(opened.error().message, HasSubstr("needs API 1.41"));
}

TEST_F(DockerBackendTest, RuntimeNotRegisteredIsAClearError) {
  DockerOptions o = options();
  o.runtime = "kata-not-here";
  auto opened = DockerBackend::open(o);
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("no runtime \"kata-not-here\" registered"));
  EXPECT_THAT(opened.error().message, HasSubstr("runsc"));  // the ones it has
}

TEST_F(DockerBackendTest, MissingImageIsAClearErrorNamingIt) {
  auto spec = default_spec();
  spec.image = "sandci-not-loaded:7";
  auto created = docker_backend().create(spec);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("image 'sandci-not-loaded:7' is not in the Docker engine"));
}

TEST_F(DockerBackendTest, DockerHostNamesTheEngine) {
  ::setenv("DOCKER_HOST", ("unix://" + docker_socket()).c_str(), 1);
  DockerOptions o = options();
  o.socket.clear();
  auto opened = DockerBackend::open(o);
  ::setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  auto refused = docker_socket_from_env();
  ::unsetenv("DOCKER_HOST");
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ((*opened)->client().socket_path(), docker_socket());
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("not a local unix socket"));
  EXPECT_EQ(*docker_socket_from_env(), kDefaultDockerSocket);
}

TEST_F(DockerBackendTest, ReapStaleRemovesContainersOfACrashedOwner) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  docker_backend();  // the engine runs before the fork
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto created = docker_backend().create(default_spec());
    std::string id = created ? (*created)->id() : "";
    (void)!::write(fds[1], id.data(), id.size());
    if (created) (*created).release();  // never destroyed: the process just ends
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[256];
  ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  ASSERT_GT(n, 0) << "the child could not create a container";
  const std::string id(buf, static_cast<std::size_t>(n));
  auto live = make();  // a live owner's container must survive
  ASSERT_NE(live, nullptr);
  auto reaped = docker_backend().reap_stale();
  ASSERT_TRUE(reaped) << reaped.error().message;
  EXPECT_EQ(*reaped, 1);
  auto gone = docker_backend().client().call("GET", "/containers/" + id + "/json");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404u);
  EXPECT_TRUE(run(*live, {"true"}).status.success());
}

template <typename T>
std::optional<std::string> error_of(const std::expected<T, SandboxError>& result) {
  return result ? std::nullopt : std::optional<std::string>(result.error().message);
}

// The engine's State of a container: Pid (with runsc, its sandbox process), Running.
std::optional<nlohmann::json> container_state(const std::string& id) {
  auto inspected = docker_backend().client().call_json("GET", "/containers/" + id + "/json", nullptr, "inspect");
  if (!inspected) return std::nullopt;
  return (*inspected)["State"];
}

// Lets a SIGSTOPped process go on when the test leaves, also on failure (the
// engine could otherwise not remove its container).
struct Resume {
  pid_t pid;
  void now() {
    if (pid > 0) ::kill(pid, SIGCONT);
    pid = 0;  // a later pid of that number is someone else's
  }
  ~Resume() { now(); }
};

// A container that stops answering (its sandbox process SIGSTOPped: an exec into
// it then never ends, nor does the engine's kill of it) holds none of sandci's
// file helpers past its bound: each fails saying so, later calls fail at once,
// the container was told to stop (it is stopped once it can be), and destroying
// it leaves nothing behind.
TEST_F(DockerBackendTest, FileHelpersOfAContainerThatStoppedAnsweringFailAtTheirBound) {
  TempDir host;
  write_host_file((host.path() / "in.txt").string(), "in\n");
  using Helper = std::function<std::optional<std::string>(Sandbox&)>;
  const std::vector<std::pair<std::string, Helper>> helpers = {
      {"write_file", [](Sandbox& s) { return error_of(s.write_file("/tmp/x", "x")); }},
      {"read_file", [](Sandbox& s) { return error_of(s.read_file("/etc/hostname", 100)); }},
      {"copy_in", [&](Sandbox& s) { return error_of(s.copy_in(host.path().string(), "/tmp/in")); }},
      {"copy_out", [&](Sandbox& s) { return error_of(s.copy_out({"/etc/hostname"}, (host.path() / "out").string())); }},
  };
  for (const auto& [name, helper] : helpers) {
    SCOPED_TRACE(name);
    auto sandbox = make();
    ASSERT_NE(sandbox, nullptr);
    const std::string id = sandbox->id();
    static_cast<DockerSandbox&>(*sandbox).set_helper_bounds(std::chrono::seconds(2), std::chrono::seconds(2));
    ASSERT_EQ(helper(*sandbox), std::nullopt) << "answers while the container runs";
    const auto state = container_state(id);
    ASSERT_TRUE(state && state->value("Pid", 0) > 0);
    const pid_t pid = state->value("Pid", 0);
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    Resume resume{pid};
    const auto started = std::chrono::steady_clock::now();
    auto pending = std::async(std::launch::async, [&, &helper = helper] { return helper(*sandbox); });
    if (pending.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      resume.now();  // so that the helper can return
      pending.wait();
      FAIL() << "still waiting 60 s after the container stopped answering";
    }
    const auto took = std::chrono::steady_clock::now() - started;
    const auto failed = pending.get();
    ASSERT_NE(failed, std::nullopt) << "succeeded with the container stopped";
    EXPECT_THAT(*failed, HasSubstr(name));
    EXPECT_THAT(*failed, HasSubstr("no answer after 2000 ms: the sandbox was stopped"));
    // Held until the bound, then the kill was sent (its answer awaited 2 s).
    EXPECT_GE(took, std::chrono::seconds(2));
    EXPECT_LT(took, std::chrono::seconds(15));
    const auto again = helper(*sandbox);
    ASSERT_NE(again, std::nullopt);
    EXPECT_THAT(*again, HasSubstr("the sandbox is gone: it stopped answering"));
    // Once it runs again the engine's pending kill goes through: it does not
    // come back to life.
    resume.now();
    bool running = true;
    for (int i = 0; i < 100 && running; ++i) {
      const auto now = container_state(id);
      running = !now || now->value("Running", true);
      if (running) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_FALSE(running) << "the container still runs after the helper's bound";
    sandbox.reset();
    auto gone = docker_backend().client().call("GET", "/containers/" + id + "/json");
    ASSERT_TRUE(gone) << gone.error().message;
    EXPECT_EQ(gone->status, 404u);
    EXPECT_TRUE(host_processes_mentioning(id).empty());
  }
}

// A cancelled job's exec returns even when the container stopped answering (the
// engine neither ends the exec's stream nor answers the kill): a few seconds
// after the cancel it is dropped, and the container is stopped once it can be.
TEST_F(DockerBackendTest, AnExecOfAContainerThatStoppedAnsweringEndsSoonAfterACancel) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  const std::string id = sandbox->id();
  std::promise<void> started;
  auto said = started.get_future();
  auto exec = std::async(std::launch::async, [&] {
    bool told = false;
    return sandbox->exec(ExecRequest{{"/bin/sh", "-c", "echo started; exec sleep 120"}, {}, "", {}},
                         [&](const OutputLine& line) {
                           if (!told && line.text == "started") started.set_value();
                           told = true;
                         });
  });
  ASSERT_EQ(said.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const auto state = container_state(id);
  ASSERT_TRUE(state && state->value("Pid", 0) > 0);
  const pid_t pid = state->value("Pid", 0);
  std::future<void> cancel;  // declared before `resume`: a future's end waits for its task
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  Resume resume{pid};
  const auto cancelled = std::chrono::steady_clock::now();
  cancel = std::async(std::launch::async, [&] { sandbox->kill(); });
  if (exec.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    resume.now();  // so that the exec can end
    exec.wait();
    FAIL() << "the exec still runs 60 s after the cancel";
  }
  const auto took = std::chrono::steady_clock::now() - cancelled;
  const ExitStatus status = exec.get();
  EXPECT_EQ(status.kind, ExitKind::kKilled) << describe(status);
  EXPECT_LT(took, std::chrono::seconds(15));
  ASSERT_EQ(cancel.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "kill() still waits";
  resume.now();
  bool running = true;
  for (int i = 0; i < 100 && running; ++i) {
    const auto now = container_state(id);
    running = !now || now->value("Running", true);
    if (running) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(running) << "the cancelled container still runs";
  sandbox.reset();
  auto gone = docker_backend().client().call("GET", "/containers/" + id + "/json");
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(gone->status, 404u);
}

// An engine that takes the connection and never answers (a wedged dockerd)
// holds no call past its bound: each says so, naming the call.
TEST_F(DockerBackendTest, EngineCallsGiveUpAtTheirBound) {
  TempDir dir;
  const std::string path = dir.path().string() + "/docker.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // connections wait in the backlog, never accepted
  DockerClient client(path);
  const auto bound = std::chrono::milliseconds(500);
  auto timed = [&](const std::function<std::optional<std::string>()>& call) {
    const auto started = std::chrono::steady_clock::now();
    auto failed = call();
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_GE(took, bound);
    EXPECT_LT(took, std::chrono::seconds(10));
    return failed.value_or("succeeded");
  };
  EXPECT_THAT(timed([&] { return error_of(client.call("GET", "/version", {}, bound)); }),
              HasSubstr("gave no answer after 500 ms to GET /version"));
  EXPECT_THAT(timed([&] { return error_of(client.call_json("GET", "/info", nullptr, "asking", bound)); }),
              HasSubstr("asking: the Docker engine at " + path + " gave no answer after 500 ms to GET /info"));
  EXPECT_THAT(timed([&] { return error_of(client.start_exec("e1", bound)); }),
              HasSubstr("gave no answer after 500 ms to the start of exec e1"));
  auto memfd = make_memfd("engine-test");
  ASSERT_TRUE(memfd);
  EXPECT_THAT(timed([&] { return error_of(client.get_to_fd("/containers/c/archive", memfd->get(), bound)); }),
              HasSubstr("gave no answer after 500 ms to GET /containers/c/archive"));
  EXPECT_THAT(timed([&] {
                return error_of(client.upload_from_fd("PUT", "/containers/c/archive", memfd->get(),
                                                      "application/x-tar", bound));
              }),
              HasSubstr("gave no answer after 500 ms to PUT /containers/c/archive"));
  ::close(fd);
}

}  // namespace
}  // namespace sandci::sandbox::testing
