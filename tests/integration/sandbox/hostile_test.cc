// Jobs that try to escape, starve or outlive their sandbox. Each must end with
// the job failed or contained, this test process healthy and nothing left on
// the host (the environment in sandbox_fixture.cc checks `runsc list`, runsc
// processes, bundles and cgroups once all tests have run).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/job_cgroup.h"
#include "sandbox/process.h"
#include "sandbox/runsc_sandbox.h"

namespace sandci::sandbox::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kProbe = "/usr/local/bin/sandbox_probe";

class HostileJobTest : public BothBackendsTest {
 protected:
  // The default spec plus the static probe (see probe/sandbox_probe.cc).
  SandboxSpec probe_spec() const {
    auto spec = default_spec();
    spec.mounts.push_back(Mount{SANDBOX_PROBE, kProbe, true});
    return spec;
  }

  // After a hostile job: the host still starts and runs sandboxes normally.
  void expect_host_healthy() {
    auto fresh = make();
    ASSERT_NE(fresh, nullptr);
    auto output = sh(*fresh, "echo alive");
    EXPECT_TRUE(output.status.success()) << describe(output.status);
    EXPECT_EQ(output.out(), "alive\n");
  }

  // After destruction: nothing of the sandbox on the host.
  void expect_gone(const std::string& id) const {
    EXPECT_TRUE(host_processes_mentioning(id).empty()) << "host processes of " << id << " remain";
    if (kind() == BackendKind::kDocker) {
      auto inspected = docker_backend().client().call("GET", "/containers/" + id + "/json");
      ASSERT_TRUE(inspected) << inspected.error().message;
      EXPECT_EQ(inspected->status, 404u) << "container " << id << " is still in the engine";
      return;
    }
    auto listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
    ASSERT_TRUE(listed);
    EXPECT_THAT(listed->out, Not(HasSubstr(id)));
    EXPECT_FALSE(JobCgroup(RunscSandbox::cgroups_path_for(id)).exists());
    EXPECT_FALSE(fs::exists(backend().bundles_dir() + "/" + id));
  }
};

INSTANTIATE_BOTH_BACKENDS(HostileJobTest);

// A TCP listener on the host's loopback that the job must not reach.
class HostListener {
 public:
  HostListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("listener setup failed");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~HostListener() { ::close(fd_); }
  int port() const { return port_; }
  bool saw_connection(int wait_ms) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, wait_ms) > 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == std::string(field) + ":") {
      in >> value;
      return value;
    }
    std::getline(in, key);
  }
  return -1;
}

TEST_P(HostileJobTest, NetworkEgressToAHostListenerFails) {
  HostListener listener;
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  std::string port = std::to_string(listener.port());
  auto output = run(*sandbox, {"/bin/bash", "-c",
                               "exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected; "
                               "exec 4<>/dev/tcp/localhost/" + port + " && echo connected"});
  EXPECT_FALSE(output.status.success()) << describe(output.status);
  EXPECT_THAT(output.out(), Not(HasSubstr("connected")));
  EXPECT_THAT(output.err(), HasSubstr("Connection refused"));
  EXPECT_FALSE(listener.saw_connection(500)) << "the job reached the host's loopback";
  // No interface but the sandbox's own loopback: there is no route anywhere.
  auto interfaces = sh(*sandbox, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
  EXPECT_EQ(interfaces.out(), "lo\n");
}

TEST_P(HostileJobTest, HostFilesOutsideTheMountsAreNotReadable) {
  std::string marker = "/var/tmp/sandci-marker-" + std::to_string(::getpid()) + "-" +
                       std::to_string(std::random_device{}());
  std::string secret = "host-secret-" + std::to_string(std::random_device{}());
  write_host_file(marker, secret);
  struct Remove {
    std::string path;
    ~Remove() { fs::remove(path); }
  } remove{marker};
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, "cat " + marker + "; cat /proc/1/root" + marker);
  EXPECT_FALSE(output.status.success());
  EXPECT_THAT(output.out() + output.err(), Not(HasSubstr(secret)));
  EXPECT_THAT(output.err(), HasSubstr("No such file or directory"));
}

TEST_P(HostileJobTest, WritesToWorkspaceAndRootNeverReachTheHost) {
  write_host_file(workspace_.path().string() + "/keep.txt", "original\n");
  write_host_file(workspace_.path().string() + "/victim.txt", "still here\n");
  std::string planted = "/usr/local/bin/sandci-planted-" + std::to_string(::getpid());
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox,
                   "echo changed > /workspace/keep.txt && rm /workspace/victim.txt && "
                   "echo new > /workspace/new.txt && echo evil > " + planted + " && rm -f /etc/passwd && "
                   "cat /workspace/keep.txt " + planted);
  ASSERT_TRUE(output.status.success()) << describe(output.status) << output.err();
  EXPECT_EQ(output.out(), "changed\nevil\n") << "inside, the writes happened";
  // The host checkout and the image are untouched.
  EXPECT_EQ(read_host_file(workspace_.path().string() + "/keep.txt"), "original\n");
  EXPECT_EQ(read_host_file(workspace_.path().string() + "/victim.txt"), "still here\n");
  EXPECT_FALSE(fs::exists(workspace_.path().string() + "/new.txt"));
  EXPECT_FALSE(fs::exists(std::string(kTestRootfs) + planted));
  EXPECT_TRUE(fs::exists(std::string(kTestRootfs) + "/etc/passwd"));
}

TEST_P(HostileJobTest, KernelIsGvisorNotTheHost) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, "uname -r; dmesg | head -n 1");
  ASSERT_TRUE(output.status.success()) << describe(output.status);
  EXPECT_THAT(output.out(), ::testing::StartsWith("4.4.0\n"));
  EXPECT_THAT(output.out(), HasSubstr("Starting gVisor"));
}

TEST_P(HostileJobTest, ForkBombIsStoppedByThePidsLimit) {
  auto spec = default_spec();
  spec.limits.pids = 128;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, "bomb() { bomb | bomb & }; bomb; sleep 600", std::chrono::seconds(60));
  EXPECT_EQ(output.status.kind, ExitKind::kPidsLimit) << describe(output.status);
  EXPECT_THAT(output.status.detail, HasSubstr("process limit reached"));
  // The sandbox is gone; later steps fail at once instead of hanging.
  EXPECT_EQ(run(*sandbox, {"true"}).status.kind, ExitKind::kFailed);
  std::string id = sandbox->id();
  sandbox.reset();
  expect_gone(id);
  expect_host_healthy();
}

TEST_P(HostileJobTest, MemoryHogIsKilledAtTheLimitAndReportedAsOutOfMemory) {
  auto spec = default_spec();
  spec.limits.memory_bytes = 256ull << 20;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  // tail keeps the whole newline-free "line" in memory.
  auto output = sh(*sandbox, "head -c 2G /dev/zero | tail -n 1 | wc -c", std::chrono::seconds(90));
  EXPECT_EQ(output.status.kind, ExitKind::kOutOfMemory) << describe(output.status);
  EXPECT_THAT(output.status.detail, HasSubstr("256 MiB"));
  std::string id = sandbox->id();
  sandbox.reset();
  expect_gone(id);
  expect_host_healthy();
}

TEST_P(HostileJobTest, EndlessStepIsKilledAtItsTimeout) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto output = run(*sandbox, {"sleep", "10000"}, std::chrono::seconds(2));
  EXPECT_EQ(output.status.kind, ExitKind::kTimedOut) << describe(output.status);
  EXPECT_FALSE(output.status.success());
}

TEST_P(HostileJobTest, GigabyteOfOutputIsCappedWithBoundedMemory) {
  auto spec = default_spec();
  spec.limits.log_bytes = 1 << 20;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  const long hwm_before = status_kib("VmHWM");
  std::uint64_t delivered = 0, notices = 0, lines = 0;
  ExecRequest request{{"/bin/sh", "-c", "dd if=/dev/zero bs=1M count=1024 status=none && echo done >&2"},
                      {}, "", std::chrono::seconds(120)};
  // Nothing is kept: the test itself must not hold the output either.
  auto status = sandbox->exec(request, [&](const OutputLine& line) {
    ++lines;
    if (line.text.starts_with("[sandci] output truncated")) {
      ++notices;
    } else {
      delivered += line.text.size() + 1;
    }
  });
  const long hwm_after = status_kib("VmHWM");
  EXPECT_TRUE(status.success()) << describe(status);
  EXPECT_LE(delivered, spec.limits.log_bytes);
  EXPECT_EQ(notices, 1u);
  EXPECT_LT(lines, 100u) << "everything after the notice is dropped";
  // 1 GiB went through; the peak resident size grew by far less.
  EXPECT_LT(hwm_after - hwm_before, 32 * 1024) << "VmHWM grew by " << (hwm_after - hwm_before) << " KiB";
}

TEST_P(HostileJobTest, BackgroundDaemonsLeaveNothingBehind) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  // One daemon detaches properly, one keeps the step's stdout open: the step
  // still ends when its shell exits.
  auto output = sh(*sandbox,
                   "setsid sleep 10000 </dev/null >/dev/null 2>&1 & "
                   "(while :; do sleep 1; echo tick; done) & "
                   "echo started",
                   std::chrono::seconds(30));
  EXPECT_TRUE(output.status.success()) << describe(output.status);
  EXPECT_THAT(output.out(), HasSubstr("started"));
  auto ps = sh(*sandbox, "pgrep -c 'sleep'");
  EXPECT_NE(ps.out(), "1\n") << "the daemons run while the job runs";
  std::string id = sandbox->id();
  sandbox.reset();
  expect_gone(id);
}

TEST_P(HostileJobTest, MountIsRefused) {
  auto sandbox = make(probe_spec());
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, std::string(kProbe) + " mount; mount -t tmpfs none /mnt && echo mounted");
  EXPECT_THAT(output.out(), HasSubstr("refused: EPERM"));
  EXPECT_THAT(output.out(), Not(HasSubstr("mounted")));
}

TEST_P(HostileJobTest, PtraceOfOtherSandboxProcessesIsRefused) {
  auto sandbox = make(probe_spec());
  ASSERT_NE(sandbox, nullptr);
  // init and a sibling: neither descends from the tracer.
  auto output = sh(*sandbox, "sleep 100 & " + std::string(kProbe) + " ptrace $!; " + kProbe +
                                 " ptrace 1; kill $!");
  EXPECT_EQ(output.out(), "refused: EPERM\nrefused: EPERM\n") << output.err();
}

TEST_P(HostileJobTest, KernelModulesCannotBeLoaded) {
  auto sandbox = make(probe_spec());
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, std::string(kProbe) + " init-module; " + kProbe + " finit-module");
  EXPECT_THAT(output.out(), Not(HasSubstr("allowed")));
  EXPECT_THAT(output.out(), ::testing::MatchesRegex("refused: E[A-Z]+\nrefused: E[A-Z]+\n"));
}

TEST_P(HostileJobTest, RawSocketsAreRefused) {
  auto sandbox = make(probe_spec());
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, std::string(kProbe) + " raw-socket; " + kProbe + " packet-socket");
  EXPECT_EQ(output.out(), "refused: EPERM\nrefused: EPERM\n") << output.err();
}

}  // namespace
}  // namespace sandci::sandbox::testing
