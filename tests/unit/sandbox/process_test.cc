// Child processes get exactly the descriptors they are given; a bounded
// run_capture never waits past its bound.
#include "sandbox/process.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace sandci::sandbox {
namespace {

// Whether a child sees descriptor `fd` open.
bool child_sees(int fd, const std::vector<std::pair<int, int>>& extra = {}) {
  SpawnRequest request;
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
  ::close(high);
  ::close(sock);
}

TEST(Spawn, ExtraDescriptorsAreGiven) {
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe) << pipe.error();
  EXPECT_TRUE(child_sees(5, {{pipe->write.get(), 5}}));
  EXPECT_FALSE(child_sees(6, {{pipe->write.get(), 5}}));
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

}  // namespace
}  // namespace sandci::sandbox
