// Child processes get exactly the descriptors they are given; those asked to die
// with their parent do, and only then; a bounded run_capture never waits past its
// bound.
#include "sandbox/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace sandci::sandbox {
namespace {

// Whether a child sees descriptor `fd` open.
bool child_sees(int fd, const std::vector<std::pair<int, int>>& extra = {}, bool die_with_parent = false) {
  SpawnRequest request;
  request.die_with_parent = die_with_parent;
  request.argv = {"sh", "-c", "test -e /proc/self/fd/" + std::to_string(fd)};
  request.extra_fds = extra;
  auto child = spawn(request);
  EXPECT_TRUE(child) << child.error();
  if (!child) return false;
  const int status = wait_child(*child);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(Spawn, DescriptorsOpenedWithoutCloseOnExecDoNotLeak) {
  // A listening socket made the way a network library may make it: no CLOEXEC.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  const int high = ::dup2(sock, 57);
  ASSERT_EQ(high, 57);
  EXPECT_FALSE(child_sees(57)) << "a child inherited the agent's socket";
  EXPECT_FALSE(child_sees(57, {}, true)) << "a child that dies with the agent inherited its socket";
  ::close(high);
  ::close(sock);
}

TEST(Spawn, ExtraDescriptorsAreGiven) {
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe) << pipe.error();
  EXPECT_TRUE(child_sees(5, {{pipe->write.get(), 5}}));
  EXPECT_FALSE(child_sees(6, {{pipe->write.get(), 5}}));
  EXPECT_TRUE(child_sees(5, {{pipe->write.get(), 5}}, true));
  EXPECT_FALSE(child_sees(6, {{pipe->write.get(), 5}}, true));
}

TEST(Spawn, DieWithParentChildGetsItsStdioAndReportsAMissingProgram) {
  auto out = make_pipe();
  ASSERT_TRUE(out) << out.error();
  SpawnRequest request;
  request.argv = {"sh", "-c", "echo hello"};
  request.stdout_fd = out->write.get();
  request.die_with_parent = true;
  auto child = spawn(request);
  ASSERT_TRUE(child) << child.error();
  out->write.reset();
  char buf[16] = {};
  EXPECT_EQ(::read(out->read.get(), buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf), "hello\n");
  EXPECT_EQ(wait_child(*child), 0);

  request.argv = {"sandci-no-such-program"};
  request.stdout_fd = -1;  // the pipe above is closed now
  auto missing = spawn(request);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("sandci-no-such-program"), std::string::npos) << missing.error();
}

// PR_SET_PDEATHSIG fires when the thread that forked exits: a child asked for by
// a thread that then ends (a job's) must live on.
TEST(Spawn, DieWithParentChildOutlivesTheThreadThatAskedForIt) {
  std::expected<Child, std::string> child = std::unexpected("not started");
  pid_t tid = 0;
  std::thread asker([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    SpawnRequest request;
    request.argv = {"sleep", "60"};
    request.die_with_parent = true;
    child = spawn(request);
  });
  asker.join();
  ASSERT_TRUE(child) << child.error();
  // Gone from /proc only after the kernel has sent any parent-death signals.
  const std::filesystem::path task = "/proc/self/task/" + std::to_string(tid);
  for (int i = 0; i < 1000 && std::filesystem::exists(task); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE(std::filesystem::exists(task));
  ::kill(child->pid, SIGTERM);
  const int status = wait_child(*child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM) << "the child was killed when the asking thread ended";
}

// The agent SIGKILLed: its die-with-parent children get SIGKILL too.
TEST(Spawn, DieWithParentChildIsKilledWhenItsParentIsKilled) {
  // Orphans come to this process, so their end can be read.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(fds[0]);
    SpawnRequest request;
    request.argv = {"sleep", "60"};
    request.die_with_parent = true;
    auto child = spawn(request);
    const pid_t pid = child ? child->pid : -1;
    (void)!::write(fds[1], &pid, sizeof pid);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t grandchild = -1;
  ASSERT_EQ(::read(fds[0], &grandchild, sizeof grandchild), static_cast<ssize_t>(sizeof grandchild));
  ::close(fds[0]);
  ASSERT_GT(grandchild, 0);
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(grandchild, &status, 0), grandchild);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

// A command that never answers (runsc asking a wedged sandbox) is killed at
// the bound, and the caller is told so instead of waiting for good.
TEST(RunCapture, ACommandStillRunningAtTheBoundIsKilledAndReportedAsTimedOut) {
  auto r = run_capture({"sleep", "600"}, 1 << 16, std::chrono::milliseconds(200));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("no answer after 200 ms"), std::string::npos) << r.error();
}

TEST(RunCapture, ACommandThatEndsWithinTheBoundGivesItsOutput) {
  auto r = run_capture({"sh", "-c", "echo out; echo err >&2; exit 3"}, 1 << 16, std::chrono::seconds(30));
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_TRUE(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 3);
}

// A process's /proc file opened while it lived and read after it was reaped
// fails with ESRCH (std::ifstream read through istreambuf_iterator throws
// there, which once stopped the agent's start-up reap): no value, no exception.
TEST(ReadProcFile, AFileOfAProcessReapedAfterTheOpenReadsAsNothing) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  Fd stat(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(stat);
  EXPECT_EQ(read_to_end(stat.get()), std::nullopt);
  EXPECT_EQ(read_proc_file("/proc/" + std::to_string(pid) + "/stat"), std::nullopt);
}

TEST(ReadProcFile, ReadsAWholeFileUpToTheLimit) {
  const auto stat = read_proc_file("/proc/self/stat");
  ASSERT_TRUE(stat);
  EXPECT_TRUE(stat->starts_with(std::to_string(::getpid()) + " (")) << *stat;
  const auto maps = read_proc_file("/proc/self/maps", 10);
  ASSERT_TRUE(maps);
  EXPECT_EQ(maps->size(), 10u);
  EXPECT_EQ(read_proc_file("/proc/self/no-such-file"), std::nullopt);
}

}  // namespace
}  // namespace sandci::sandbox
