#include "integration/sandbox/sandbox_fixture.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "sandbox/process.h"
#include "support/private_dockerd.h"

namespace sandci::sandbox::testing {

namespace {
namespace fs = std::filesystem;

std::mutex backend_mutex;
std::unique_ptr<RunscBackend> the_backend;
std::string the_state_dir;
std::mutex docker_mutex;
std::unique_ptr<sandci::testing::PrivateDockerd> the_dockerd;
std::unique_ptr<DockerBackend> the_docker;

}  // namespace

std::vector<int> host_processes_mentioning(const std::string& needle) {
  std::vector<int> found;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    // A process may end mid-scan: its file then reads as nothing, no exception.
    const std::string cmdline = read_proc_file(it->path() / "cmdline").value_or("");
    if (cmdline.find(needle) != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

namespace {

// The Docker side: no container left in the private engine, then the engine
// itself is stopped (by pid) and its folder removed.
void stop_docker() {
  std::lock_guard lock(docker_mutex);
  if (the_docker) {
    auto listed = the_docker->client().call_json("GET", "/containers/json?all=1", nullptr, "listing containers");
    EXPECT_TRUE(listed && listed->is_array() && listed->empty())
        << "containers left in the private dockerd: " << (listed ? listed->dump() : listed.error().message);
  }
  the_docker.reset();
  the_dockerd.reset();
}

// Checks, at the very end of the test program, that the suite left nothing.
class NothingLeftBehind : public ::testing::Environment {
 public:
  void TearDown() override {
    stop_docker();
    std::lock_guard lock(backend_mutex);
    if (!the_backend) return;
    const std::string root = the_backend->runsc_root();
    auto listed = run_capture({"runsc", "--root=" + root, "list", "--quiet"});
    ASSERT_TRUE(listed && listed->ok()) << "runsc list failed";
    EXPECT_EQ(listed->out, "") << "containers left under " << root;
    // runsc delete has returned, but its processes may take a moment to be reaped.
    std::vector<int> left;
    for (int i = 0; i < 50; ++i) {
      left = host_processes_mentioning("--root=" + root);
      if (left.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(left.empty()) << left.size() << " runsc processes of the suite remain, e.g. pid " << left[0];
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(the_backend->bundles_dir(), ec)) << "bundles left in " << the_backend->bundles_dir();
    for (const auto& entry : fs::directory_iterator("/sys/fs/cgroup/pids", ec)) {
      std::string name = entry.path().filename();
      EXPECT_FALSE(name.starts_with("sandci-sandci") && name.find("-" + std::to_string(::getpid()) + "-") !=
                                                            std::string::npos)
          << "cgroup left: " << entry.path();
    }
    the_backend.reset();
    fs::remove_all(the_state_dir, ec);
  }
};

constexpr const char* kStatePrefix = "/tmp/sandci-sandbox-test-";

// A test program that crashed left its state dir (and maybe sandboxes) behind:
// the next run removes them. Each dir names its owner's pid; live ones stay.
void reap_crashed_test_runs() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    std::string path = entry.path();
    if (!path.starts_with(kStatePrefix)) continue;
    int pid = std::atoi(path.c_str() + std::strlen(kStatePrefix));
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0) continue;
    RunscOptions options;
    options.state_dir = path;
    if (auto stale = RunscBackend::open(options)) {  // open() reaps the dead owner's sandboxes
      stale->reset();
      fs::remove_all(path, ec);
    }
  }
}

[[maybe_unused]] auto* const registered = ::testing::AddGlobalTestEnvironment(new NothingLeftBehind);
}  // namespace

RunscBackend& backend() {
  std::lock_guard lock(backend_mutex);
  if (!the_backend) {
    reap_crashed_test_runs();
    std::string tmpl = std::string(kStatePrefix) + std::to_string(::getpid()) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    the_state_dir = tmpl;
    RunscOptions options;
    options.state_dir = the_state_dir;
    auto opened = RunscBackend::open(options);
    if (!opened) throw std::runtime_error(opened.error().message);
    the_backend = std::move(*opened);
  }
  return *the_backend;
}

DockerBackend& docker_backend() {
  std::lock_guard lock(docker_mutex);
  if (!the_docker) {
    auto dockerd = sandci::testing::PrivateDockerd::start();
    if (!dockerd) throw std::runtime_error("private dockerd: " + dockerd.error());
    the_dockerd = std::move(*dockerd);
    if (auto imported = the_dockerd->import_rootfs(kTestRootfs, kTestImage); !imported) {
      throw std::runtime_error("importing the test image: " + imported.error());
    }
    DockerOptions options;
    options.socket = the_dockerd->socket();
    options.image = kTestImage;
    options.egress_runtime = sandci::testing::PrivateDockerd::kEgressRuntime;
    auto opened = DockerBackend::open(options);
    if (!opened) throw std::runtime_error(opened.error().message);
    the_docker = std::move(*opened);
  }
  return *the_docker;
}

const std::string& docker_socket() {
  docker_backend();
  return the_dockerd->socket();
}

SandboxBackend& backend_for(BackendKind kind) {
  if (kind == BackendKind::kDocker) return docker_backend();
  return backend();
}

std::string backend_param_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return info.param == BackendKind::kDocker ? "docker" : "runsc";
}

const std::string& state_dir() {
  backend();
  return the_state_dir;
}

std::string Output::out() const {
  std::string s;
  for (const auto& l : lines) {
    if (l.stream == Stream::kStdout) s += l.text + "\n";
  }
  return s;
}

std::string Output::err() const {
  std::string s;
  for (const auto& l : lines) {
    if (l.stream == Stream::kStderr) s += l.text + "\n";
  }
  return s;
}

void SandboxTest::SetUp() {
  if (!fs::exists(std::string(kTestRootfs) + "/bin/sh")) {
    if (std::getenv("SANDCI_ALLOW_SKIP")) GTEST_SKIP() << "no test rootfs at " << kTestRootfs;
    FAIL() << "no test rootfs at " << kTestRootfs
           << ": run scripts/ensure-test-rootfs.sh (make test does), or set SANDCI_ALLOW_SKIP=1";
  }
  try {
    backend_for(kind());
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
}

SandboxSpec SandboxTest::default_spec() const {
  SandboxSpec spec;
  spec.rootfs = kTestRootfs;
  spec.mounts.push_back(Mount{workspace_.path(), "/workspace", false});
  spec.limits.memory_bytes = 512ull << 20;
  spec.limits.cpus = 1.0;
  spec.limits.pids = 256;
  spec.limits.log_bytes = 1 << 20;
  spec.name_hint = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  return spec;
}

std::unique_ptr<Sandbox> SandboxTest::make(const SandboxSpec& spec) {
  auto created = backend_for(kind()).create(spec);
  if (!created) {
    ADD_FAILURE() << "create failed: " << created.error().message;
    return nullptr;
  }
  return std::move(*created);
}

Output SandboxTest::run(Sandbox& sandbox, std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  Output output;
  ExecRequest request;
  request.argv = std::move(argv);
  request.timeout = timeout;
  output.status = sandbox.exec(request, [&output](const OutputLine& line) { output.lines.push_back(line); });
  return output;
}

std::string describe(const ExitStatus& status) {
  return std::string(to_string(status.kind)) + " code=" + std::to_string(status.code) +
         " signal=" + std::to_string(status.signal) + " (" + status.detail + ")";
}

std::string read_host_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_host_file(const std::string& path, const std::string& content) { std::ofstream(path) << content; }

}  // namespace sandci::sandbox::testing
