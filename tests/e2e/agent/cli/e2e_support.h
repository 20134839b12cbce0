#pragma once
// Support for end-to-end tests of the real `sandci` binary: temporary git
// repositories, a private state folder per test (sharing the test images that
// scripts/test-setup.sh imported once), and running the binary with a time limit.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace sandci::e2e {

namespace fs = std::filesystem;

// Where scripts/test-setup.sh keeps the images the e2e tests run jobs in.
inline fs::path shared_images_dir() {
  const char* env = std::getenv("SANDCI_TEST_IMAGES");
  return env ? fs::path(env) : fs::path("/var/cache/sandci/image-test-state/images");
}

// sandci::testing::TempDir named sandci-e2e-XXXXXX: a leftover folder names these tests.
class TempDir : public ::sandci::testing::TempDir {
 public:
  TempDir() : ::sandci::testing::TempDir("sandci-e2e-") {}
};

inline void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file under `dir`, concatenated (to search all logs for a secret).
inline std::string read_tree(const fs::path& dir) {
  std::string all;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file()) all += read_file(it->path()) + "\n";
  return all;
}

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
  bool timed_out = false;
};

// Runs `argv` with stdout+stderr captured; `on_output` gets the child's pid (to
// send it a signal) and the output so far. Past `limit` the child gets SIGTERM, as
// from an operator, so that sandci stops its sandboxes and says what it was doing;
// SIGKILL only if it still runs 30 s later.
inline Result run_command(const std::vector<std::string>& argv, std::chrono::seconds limit,
                          const fs::path& cwd = {},
                          const std::function<void(pid_t, const std::string&)>& on_output = {}) {
  int out[2];
  if (pipe(out) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  Result result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  constexpr auto kGrace = std::chrono::seconds(30);
  std::optional<std::chrono::steady_clock::time_point> terminated;
  char buf[4096];
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  for (;;) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n == 0) break;
    if (n > 0) {
      result.output.append(buf, n);
      if (on_output) on_output(pid, result.output);
    }
    // Checked after output too: a child that never stops printing is stopped as well.
    const auto now = std::chrono::steady_clock::now();
    if (!terminated && now > deadline) {
      result.timed_out = true;
      kill(pid, SIGTERM);
      terminated = now;
    } else if (terminated && now > *terminated + kGrace) {
      kill(pid, SIGKILL);  // (its children may hold the pipe open: stop reading)
      break;
    }
    if (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// A git repository with the given files, committed on branch main.
inline void make_repo(const fs::path& dir, const std::map<std::string, std::string>& files) {
  for (const auto& [path, content] : files) write_file(dir / path, content);
  auto git = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-C", dir.string(), "-c", "user.name=t", "-c",
                                     "user.email=t@example.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  git({"init", "-q", "-b", "main"});
  git({"add", "-A"});
  git({"commit", "-q", "-m", "test"});
}

// Where scripts/test-setup.sh keeps the runner image (sandci-runner:12), apart from
// the small default image so that the other tests' ubuntu-latest jobs keep using that.
inline fs::path runner_images_dir() {
  const char* env = std::getenv("SANDCI_TEST_RUNNER_IMAGES");
  return env ? fs::path(env) : fs::path("/var/cache/sandci/runner-test-state/images");
}

// A test's own state folder; its images/ is the shared, prepared one (or `images`).
class StateDir {
 public:
  explicit StateDir(fs::path images = shared_images_dir()) : images_(std::move(images)) {
    fs::create_directories(dir_.path());
    if (fs::exists(images_)) fs::create_directory_symlink(images_, dir_.path() / "images");
  }
  const fs::path& path() const { return dir_.path(); }
  bool has_images() const { return fs::exists(images_); }
  // runsc containers still known under this state dir's runsc root.
  std::string runsc_list() const {
    auto root = dir_.path() / "sandbox" / "runsc";
    if (!fs::exists(root)) return "";
    auto r = run_command({"runsc", "--root=" + root.string(), "list", "-quiet"}, std::chrono::seconds(30));
    return r.output;
  }

 private:
  TempDir dir_;
  fs::path images_;
};

// A test of `sandci run` on a repository of its own, with a private state folder
// whose images are the prepared ones; no sandbox may outlive the test.
class SandciRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(state_.has_images()) << "test images missing: run scripts/test-setup.sh (make test does)";
  }
  void TearDown() override { EXPECT_EQ(state_.runsc_list(), ""); }

  Result run(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {SANDCI_BINARY, "run", repo_.path().string(), "--plain", "--state-dir",
                                     state_.path().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = run_command(argv, std::chrono::seconds(300));
    EXPECT_FALSE(r.timed_out) << r.output;
    return r;
  }

  TempDir repo_;
  StateDir state_;
};

}  // namespace sandci::e2e
