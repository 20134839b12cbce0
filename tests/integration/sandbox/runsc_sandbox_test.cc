// Ordinary behaviour of the sandbox backends (the contract, on runsc and on Docker
// with runsc), against real runsc, a private dockerd and the test rootfs.
#include <gmock/gmock.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <thread>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/job_cgroup.h"
#include "sandbox/process.h"
#include "sandbox/runsc_sandbox.h"

namespace sandci::sandbox::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class RunscSandboxTest : public SandboxTest {};
class SandboxContractTest : public BothBackendsTest {};
INSTANTIATE_BOTH_BACKENDS(SandboxContractTest);

TEST_P(SandboxContractTest, ReportsExitCodesAndSignals) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto ok = run(*sandbox, {"true"});
  EXPECT_TRUE(ok.status.success()) << describe(ok.status);
  auto seven = sh(*sandbox, "exit 7");
  EXPECT_EQ(seven.status.kind, ExitKind::kExited);
  EXPECT_EQ(seven.status.code, 7);
  auto term = sh(*sandbox, "kill -TERM $$");
  EXPECT_EQ(term.status.kind, ExitKind::kSignaled) << describe(term.status);
  EXPECT_EQ(term.status.signal, SIGTERM);
}

TEST_P(SandboxContractTest, MissingProgramIsAFailureWithRunscsReason) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto missing = run(*sandbox, {"/no/such/program"});
  EXPECT_EQ(missing.status.kind, ExitKind::kFailed);
  EXPECT_THAT(missing.status.detail, HasSubstr("/no/such/program"));
  EXPECT_TRUE(run(*sandbox, {"true"}).status.success()) << "the sandbox survives a failed exec";
}

TEST_P(SandboxContractTest, StreamsStdoutAndStderrLineByLine) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto before = std::chrono::system_clock::now();
  auto output = sh(*sandbox, "echo one; echo two >&2; echo three; printf 'no newline'");
  ASSERT_TRUE(output.status.success()) << describe(output.status);
  EXPECT_EQ(output.out(), "one\nthree\nno newline\n");
  EXPECT_EQ(output.err(), "two\n");
  for (const auto& line : output.lines) {
    EXPECT_GE(line.time, before);
    EXPECT_LE(line.time, std::chrono::system_clock::now());
  }
}

// One exec takes its input on stdin and hands files back on descriptors 3, 4...;
// the host keeps at most the limit + 1 byte of each, whatever is written.
TEST_P(SandboxContractTest, ExecWithStdinAndCapturedDescriptors) {
  auto spec = default_spec();
  spec.tmpfs = {"/tmp/runner-files"};
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  ExecRequest request;
  request.argv = {"/bin/sh", "-c",
                  "cat > /tmp/runner-files/in && printf first >&3 && head -c 100000 /dev/zero >&4 && "
                  "cat /tmp/runner-files/in"};
  ExecIo io;
  io.stdin_data = std::string("from the host\n");
  io.capture_count = 3;
  io.capture_max_bytes = 1000;
  Output output;
  output.status = sandbox->exec(request, [&](const OutputLine& l) { output.lines.push_back(l); }, io);
  ASSERT_TRUE(output.status.success()) << describe(output.status) << output.err();
  EXPECT_EQ(output.out(), "from the host\n");
  ASSERT_EQ(io.captured.size(), 3u);
  EXPECT_EQ(io.captured[0], "first");
  EXPECT_EQ(io.captured[1].size(), 1001u) << "cut one byte past the limit";
  EXPECT_EQ(io.captured[2], "");
  // Without ExecIo the descriptors are not there.
  auto plain = sh(*sandbox, "{ true >&3; } 2>/dev/null && echo open || echo closed");
  EXPECT_EQ(plain.out(), "closed\n");
}

TEST_P(SandboxContractTest, AppliesEnvironmentAndWorkingDirectory) {
  auto spec = default_spec();
  spec.env = {"GREETING=hello", "SHARED=from-spec"};
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  ExecRequest request;
  request.argv = {"/bin/sh", "-c", "echo $GREETING $SHARED $STEP; pwd"};
  request.env = {"SHARED=from-step", "STEP=build"};
  Output output;
  output.status = sandbox->exec(request, [&](const OutputLine& l) { output.lines.push_back(l); });
  ASSERT_TRUE(output.status.success()) << describe(output.status);
  EXPECT_EQ(output.out(), "hello from-step build\n/workspace\n");

  request.argv = {"pwd"};
  request.working_dir = "/tmp";
  output.lines.clear();
  output.status = sandbox->exec(request, [&](const OutputLine& l) { output.lines.push_back(l); });
  EXPECT_EQ(output.out(), "/tmp\n");
}

TEST_P(SandboxContractTest, StepsShareTheSandboxFilesystem) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  ASSERT_TRUE(sh(*sandbox, "echo built > /workspace/out.txt && mkdir -p /opt/tool").status.success());
  auto output = sh(*sandbox, "cat /workspace/out.txt && test -d /opt/tool");
  EXPECT_TRUE(output.status.success()) << describe(output.status);
  EXPECT_EQ(output.out(), "built\n");
}

TEST_P(SandboxContractTest, WritesAndReadsFiles) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  std::string script = "#!/bin/sh\necho from script\n";
  ASSERT_TRUE(sandbox->write_file("/tmp/steps/step1.sh", script, 0755));
  auto ran = run(*sandbox, {"/tmp/steps/step1.sh"});
  EXPECT_TRUE(ran.status.success()) << describe(ran.status);
  EXPECT_EQ(ran.out(), "from script\n");
  EXPECT_EQ(sh(*sandbox, "stat -c %a /tmp/steps/step1.sh").out(), "755\n");

  auto back = sandbox->read_file("/tmp/steps/step1.sh", 1024);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, script);

  std::string binary("a\0b\nc", 5);
  ASSERT_TRUE(sandbox->write_file("/workspace/bin.dat", binary));
  EXPECT_EQ(sandbox->read_file("/workspace/bin.dat", 5).value_or("?"), binary);
  auto too_big = sandbox->read_file("/workspace/bin.dat", 4);
  ASSERT_FALSE(too_big);
  EXPECT_THAT(too_big.error().message, HasSubstr("larger than 4 bytes"));
  EXPECT_FALSE(sandbox->read_file("/no/such/file", 10));
}

TEST_P(SandboxContractTest, CopiesFilesOutAndIn) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  ASSERT_TRUE(sh(*sandbox, "mkdir -p /out/dist/sub && echo a > /out/dist/a.txt && echo b > /out/dist/sub/b.txt"
                           " && echo c > /tmp/c.log")
                  .status.success());
  TempDir host;
  auto copied = sandbox->copy_out({"/out/dist", "/tmp/c.log"}, host.path());
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(read_host_file(host.path().string() + "/out/dist/a.txt"), "a\n");
  EXPECT_EQ(read_host_file(host.path().string() + "/out/dist/sub/b.txt"), "b\n");
  EXPECT_EQ(read_host_file(host.path().string() + "/tmp/c.log"), "c\n");

  auto in = sandbox->copy_in(host.path().string() + "/out", "/restored");
  ASSERT_TRUE(in) << in.error().message;
  EXPECT_EQ(sh(*sandbox, "cat /restored/dist/a.txt /restored/dist/sub/b.txt").out(), "a\nb\n");

  auto missing = sandbox->copy_out({"/does/not/exist"}, host.path());
  EXPECT_FALSE(missing);
}

TEST_P(SandboxContractTest, TimedOutStepIsKilledAndTheSandboxSurvives) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  auto slow = sh(*sandbox, "sleep 1000 & sleep 1000; echo never", std::chrono::seconds(1));
  EXPECT_EQ(slow.status.kind, ExitKind::kTimedOut) << describe(slow.status);
  EXPECT_EQ(slow.out(), "");
  // The step's whole process tree is gone, the sandbox still serves later steps.
  auto ps = run(*sandbox, {"ps", "-eo", "comm="});
  EXPECT_TRUE(ps.status.success()) << describe(ps.status);
  EXPECT_THAT(ps.out(), ::testing::Not(HasSubstr("sleep 1000")));
  EXPECT_EQ(sh(*sandbox, "pgrep -xc sleep").out(), "1\n") << "only init's sleep is left";
}

TEST_P(SandboxContractTest, KillStopsARunningExecFromAnotherThread) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  std::atomic<bool> started{false};
  ExitStatus result;
  std::thread runner([&] {
    ExecRequest request{{"/bin/sh", "-c", "echo started; sleep 1000"}, {}, "", std::chrono::milliseconds(0)};
    result = sandbox->exec(request, [&](const OutputLine&) { started = true; });
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sandbox->kill();
  runner.join();
  EXPECT_EQ(result.kind, ExitKind::kKilled) << describe(result);
  EXPECT_EQ(run(*sandbox, {"true"}).status.kind, ExitKind::kKilled);
}

TEST_P(SandboxContractTest, CapsOutputAtTheLogLimitWithOneNotice) {
  auto spec = default_spec();
  spec.limits.log_bytes = 1000;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  auto output = sh(*sandbox, "seq 1 10000");
  EXPECT_TRUE(output.status.success()) << describe(output.status);
  std::size_t bytes = 0, notices = 0;
  for (const auto& l : output.lines) {
    if (l.text.starts_with("[sandci] output truncated")) {
      ++notices;
    } else {
      bytes += l.text.size() + 1;
    }
  }
  EXPECT_LE(bytes, 1000u);
  EXPECT_GT(bytes, 900u);
  EXPECT_EQ(notices, 1u);
  // The budget is the sandbox's: a later step gets nothing more.
  EXPECT_TRUE(sh(*sandbox, "echo more").lines.empty());
}

TEST_P(SandboxContractTest, RunsSeveralSandboxesAtOnce) {
  constexpr int kCount = 3;
  std::vector<std::string> results(kCount);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCount; ++i) {
    threads.emplace_back([&, i] {
      auto spec = default_spec();
      auto created = backend_for(kind()).create(spec);
      if (!created) {
        results[i] = "create failed: " + created.error().message;
        return;
      }
      auto& sandbox = **created;
      sandbox.write_file("/tmp/me", std::to_string(i));
      auto output = sh(sandbox, "echo $(cat /tmp/me) $(hostname)");
      results[i] = output.out();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(results[i], std::to_string(i) + " sandci\n");
}

TEST_F(RunscSandboxTest, DestructorRemovesContainerBundleAndCgroup) {
  auto sandbox = make();
  ASSERT_NE(sandbox, nullptr);
  std::string id = sandbox->id();
  JobCgroup cgroup(RunscSandbox::cgroups_path_for(id));
  EXPECT_TRUE(cgroup.exists());
  EXPECT_TRUE(fs::exists(backend().bundles_dir() + "/" + id));
  sandbox.reset();
  auto listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
  ASSERT_TRUE(listed);
  EXPECT_THAT(listed->out, ::testing::Not(HasSubstr(id)));
  EXPECT_FALSE(cgroup.exists());
  EXPECT_FALSE(fs::exists(backend().bundles_dir() + "/" + id));
}

TEST_F(RunscSandboxTest, ReapStaleRemovesASandboxLeftByACrashedOwner) {
  // A child process creates a sandbox and dies without cleaning up, as a crash would.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string spec_root = state_dir();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto created = backend().create(default_spec());
    std::string id = created ? (*created)->id() : "";
    (void)!::write(fds[1], id.data(), id.size());
    (*created).release();  // never destroyed: the process just ends
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[256];
  ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_GT(n, 0) << "the child could not create a sandbox";
  std::string id(buf, static_cast<std::size_t>(n));

  auto listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
  ASSERT_TRUE(listed);
  ASSERT_THAT(listed->out, HasSubstr(id)) << "the crashed owner's sandbox is still there";
  JobCgroup cgroup(RunscSandbox::cgroups_path_for(id));
  EXPECT_TRUE(cgroup.exists());

  auto live = make();  // a live owner's sandbox must survive the reaping
  ASSERT_NE(live, nullptr);
  auto report = backend().reap_stale();
  EXPECT_TRUE(report.errors.empty()) << (report.errors.empty() ? "" : report.errors.front());
  EXPECT_EQ(report.containers, 1);

  listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
  EXPECT_THAT(listed->out, ::testing::Not(HasSubstr(id)));
  EXPECT_FALSE(cgroup.exists());
  EXPECT_FALSE(fs::exists(backend().bundles_dir() + "/" + id));
  EXPECT_TRUE(run(*live, {"true"}).status.success());
}

// The reaping runs beside sandbox starts (`sandci run` reaps while its first
// sandbox starts): a bundle still being written, its owner file not yet
// readable, is left alone; one whose owner is known to be dead is removed.
TEST_F(RunscSandboxTest, ReapingLeavesABundleBeingWrittenAlone) {
  const std::string pid = std::to_string(::getpid());
  const std::string writing = backend().bundles_dir() + "/.sandci-writing-" + pid + "-1-a1b2c3";
  const std::string dead = backend().bundles_dir() + "/.sandci-dead-" + pid + "-2-d4e5f6";
  fs::create_directories(writing);
  fs::create_directories(dead);
  std::ofstream(writing + "/owner").flush();  // created, nothing written yet
  std::ofstream(dead + "/owner") << "999999999 12345\n";  // above any pid_max: no such process
  backend().reap_stale();
  EXPECT_TRUE(fs::exists(writing)) << "a bundle being written was reaped under its owner";
  EXPECT_FALSE(fs::exists(dead)) << "a dead owner's unfinished bundle was left";
  fs::remove_all(writing);
  fs::remove_all(dead);
}

template <typename T>
std::optional<std::string> error_of(const std::expected<T, SandboxError>& result) {
  return result ? std::nullopt : std::optional<std::string>(result.error().message);
}

// A sandbox that stops answering (its sandbox process SIGSTOPped: `runsc exec`
// then waits for good) holds none of sandci's file helpers past its bound: each
// fails saying so, and the sandbox is stopped (later calls fail at once).
TEST_F(RunscSandboxTest, FileHelpersOfASandboxThatStoppedAnsweringFailAtTheirBound) {
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
    static_cast<RunscSandbox&>(*sandbox).set_helper_bounds(std::chrono::seconds(2), std::chrono::seconds(2));
    ASSERT_EQ(helper(*sandbox), std::nullopt) << "answers while the sandbox runs";
    const std::string pid_file = backend().bundles_dir() + "/" + sandbox->id() + "/sandbox.pid";
    const pid_t pid = std::atoi(read_host_file(pid_file).c_str());
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    const auto started = std::chrono::steady_clock::now();
    const auto failed = helper(*sandbox);
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_NE(failed, std::nullopt) << "succeeded with the sandbox stopped";
    EXPECT_THAT(*failed, HasSubstr(name));
    EXPECT_THAT(*failed, HasSubstr("no answer after 2000 ms: the sandbox was stopped"));
    // It was held until the bound (runsc exec gets no answer), then the sandbox
    // was killed (its pidfd) and runsc exec returned, or was killed after a grace.
    EXPECT_GE(took, std::chrono::seconds(2));
    EXPECT_LT(took, std::chrono::seconds(30));
    const auto again = helper(*sandbox);
    ASSERT_NE(again, std::nullopt);
    EXPECT_THAT(*again, HasSubstr("the sandbox is gone: it stopped answering"));
  }
}

// The host processes whose arguments name `id` (runsc run, its sandbox and gofer).
std::vector<std::string> processes_naming(const std::string& id) {
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // A process may end mid-scan: its files then read as nothing, no exception.
    const std::string cmdline = read_proc_file(it->path() / "cmdline").value_or("");
    const std::string stat = read_proc_file(it->path() / "stat").value_or("");
    const auto close = stat.rfind(')');
    const bool zombie = close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
    if (!zombie && cmdline.find(id) != std::string::npos) found.push_back(it->path().filename().string());
  }
  return found;
}

// The owner is SIGKILLed while `runsc run` is creating its sandbox: runsc dies
// with it (parent-death signal), and after the reap nothing of the sandbox is
// left that could come back: no process naming it, no runsc state, no cgroup.
TEST_F(RunscSandboxTest, NothingOfASandboxItsOwnerDiedCreatingSurvivesTheReap) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    (void)backend().create(default_spec());
    ::pause();  // killed before or after the sandbox is up
    ::_exit(0);
  }
  // Killed as soon as its bundle is in place: `runsc run` starts right after.
  const std::string mark = "-" + std::to_string(pid) + "-";
  std::string id;
  for (int i = 0; i < 30000 && id.empty(); ++i) {
    std::error_code ec;
    for (fs::directory_iterator it(backend().bundles_dir(), ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename();
      if (!name.starts_with(".") && name.find(mark) != std::string::npos) id = name;
    }
    if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_FALSE(id.empty()) << "the child made no bundle";

  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = processes_naming(id).empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "runsc outlived the owner that started it";

  auto report = backend().reap_stale();
  for (const auto& error : report.errors) ADD_FAILURE() << error;
  EXPECT_TRUE(processes_naming(id).empty());
  auto listed = run_capture({"runsc", "--root=" + backend().runsc_root(), "list", "--quiet"});
  ASSERT_TRUE(listed);
  EXPECT_THAT(listed->out, ::testing::Not(HasSubstr(id)));
  EXPECT_FALSE(JobCgroup(RunscSandbox::cgroups_path_for(id)).exists());
  EXPECT_FALSE(fs::exists(backend().bundles_dir() + "/" + id));
}

// A cgroup of a sandbox whose creator is gone and whose bundle is gone too (a
// crash between the two removals, or a state folder wiped by hand) is removed.
TEST_F(RunscSandboxTest, ReapRemovesTheCgroupOfADeadCreatorsSandboxWithoutABundle) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);  // a pid nobody uses now
  const std::string id = "sandci-reaptest-" + std::to_string(pid) + "-1-abcdef";
  const fs::path root = fs::path(state_dir()) / "fake-cgroup";
  // A cgroup v1 layout under a private root: two hierarchies holding the folder.
  for (const char* controller : {"cpu", "memory"}) fs::create_directories(root / controller / ("sandci-" + id));
  fs::create_directories(root / "cpu" / "sandci-sandci-alive-1-1-abcdef");  // pid 1 lives
  backend().set_cgroup_root(root.string());
  auto report = backend().reap_stale();
  backend().set_cgroup_root("/sys/fs/cgroup");
  for (const auto& error : report.errors) ADD_FAILURE() << error;
  EXPECT_EQ(report.cgroups, 1);
  EXPECT_FALSE(fs::exists(root / "cpu" / ("sandci-" + id)));
  EXPECT_FALSE(fs::exists(root / "memory" / ("sandci-" + id)));
  EXPECT_TRUE(fs::exists(root / "cpu" / "sandci-sandci-alive-1-1-abcdef"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace sandci::sandbox::testing
