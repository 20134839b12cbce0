// Figures for the git library against git itself, on a generated repository of
// 10,000 files and 1,000 commits served by a git daemon on 127.0.0.1:
//   cold:     MirrorCache::fetch into an empty cache   vs  git clone --mirror
//   warm:     fetch of one new commit into the mirror  vs  git fetch
//   checkout: MirrorCache::checkout of one commit      vs  git worktree add, git archive | tar x
// Prints the median of a few runs of each. Usage: bench_git_bench [runs=3]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "git/mirror_cache.h"
#include "support/bench_support.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using sandci::git::MirrorCache;
using sandci::bench::capture;
using sandci::bench::free_port;
using sandci::bench::wait_for_port;

namespace {

constexpr int kFiles = 10'000;
constexpr int kCommits = 1'000;

int run(const std::string& shell_command) {
  int rc = std::system(shell_command.c_str());
  if (rc != 0) std::cerr << "command failed (" << rc << "): " << shell_command << "\n";
  return rc;
}

double seconds(const std::function<void()>& f) {
  auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 10,000 files in the first commit, then 999 commits touching 10 files each.
void generate_repository(const fs::path& work) {
  std::ofstream out(work / "import.txt", std::ios::binary);
  long when = 1'700'000'000;
  for (int c = 0; c < kCommits; ++c) {
    out << "commit refs/heads/main\ncommitter Bench <bench@example.com> " << when + c * 60
        << " +0000\ndata " << std::to_string(c).size() + 7 << "\ncommit " << c << "\n";
    int first = c == 0 ? 0 : (c * 37) % kFiles;
    int count = c == 0 ? kFiles : 10;
    for (int k = 0; k < count; ++k) {
      int i = (first + k) % kFiles;
      char path[64];
      std::snprintf(path, sizeof path, "src/d%03d/f%05d.txt", i / 100, i);
      std::string content = "file " + std::to_string(i) + " version " + std::to_string(c) + "\n" +
                            std::string(200, static_cast<char>('a' + (i + c) % 26)) + "\n";
      out << "M 100644 inline " << path << "\ndata " << content.size() << "\n" << content << "\n";
    }
  }
  out.close();
  run("git -C " + work.string() + " fast-import --quiet < " + (work / "import.txt").string());
}

struct Daemon {
  pid_t pid = -1;
  ~Daemon() {
    if (pid > 0) {
      kill(-pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

void print_row(const char* what, double ours, const char* other_name, double other) {
  std::printf("%-34s sandci %7.3f s   %-22s %7.3f s   ratio %.2fx\n", what, ours, other_name, other,
              ours / other);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::string tmpl = (fs::temp_directory_path() / "sandci-git-bench-XXXXXX").string();
  fs::path root = mkdtemp(tmpl.data());
  fs::path srv = root / "srv", work = root / "work";
  fs::create_directories(srv);
  run("git init -q -b main " + work.string());
  std::printf("generating %d files, %d commits...\n", kFiles, kCommits);
  std::fflush(stdout);
  generate_repository(work);
  run("git clone -q --bare " + work.string() + " " + (srv / "app.git").string());
  run("git -C " + work.string() + " remote add origin " + (srv / "app.git").string());

  Daemon daemon;
  int port = free_port();
  daemon.pid = fork();
  if (daemon.pid == 0) {
    setpgid(0, 0);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    std::string base = "--base-path=" + srv.string(), port_arg = "--port=" + std::to_string(port);
    execlp("git", "git", "daemon", base.c_str(), "--export-all", "--reuseaddr",
           "--listen=127.0.0.1", port_arg.c_str(), srv.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  wait_for_port(port);
  std::string url = "git://127.0.0.1:" + std::to_string(port) + "/app.git";

  // Cold: a fresh cache every run against a fresh git mirror every run.
  std::vector<double> ours_cold, git_cold;
  for (int r = 0; r < runs; ++r) {
    fs::path state = root / ("state" + std::to_string(r)), gm = root / ("gm" + std::to_string(r));
    ours_cold.push_back(seconds([&] {
      MirrorCache cache(state);
      auto result = cache.fetch(url);
      if (!result) std::cerr << result.error().to_string() << "\n";
    }));
    git_cold.push_back(seconds([&] { run("git clone -q --mirror " + url + " " + gm.string()); }));
  }
  std::string size = capture("du -sh " + (root / "state0").string() + " | cut -f1");

  // Warm: one new commit on the server, fetched by each mirror.
  MirrorCache cache(root / "state0");
  fs::path gm = root / "gm0";
  std::vector<double> ours_warm, git_warm;
  for (int r = 0; r < runs; ++r) {
    run("cd " + work.string() + " && git -c user.name=b -c user.email=b@e commit -q --allow-empty "
        "-m warm" + std::to_string(r) + " && git push -q origin HEAD:refs/heads/main");
    ours_warm.push_back(seconds([&] {
      auto result = cache.fetch(url);
      if (!result) std::cerr << result.error().to_string() << "\n";
    }));
    git_warm.push_back(seconds([&] { run("git -C " + gm.string() + " fetch -q --prune origin"); }));
  }

  // Checkout of one commit (the 500th) into a fresh folder.
  std::string sha = capture("git -C " + gm.string() + " rev-parse main~500");
  std::vector<double> ours_co, git_wt, git_archive;
  // The disk may still be busy with the previous run's deletions (ext4 with discard
  // makes them costly): sync before each timed run, and rotate the order.
  auto timed = [](const std::function<void()>& f) {
    sync();
    return seconds(f);
  };
  for (int r = 0; r < runs; ++r) {
    fs::path a = root / ("co" + std::to_string(r)), b = root / ("wt" + std::to_string(r)),
             c = root / ("ar" + std::to_string(r));
    std::vector<std::function<void()>> order = {
        [&] {
          ours_co.push_back(timed([&] {
            auto result = cache.checkout(url, sha, a);
            if (!result) std::cerr << result.error().to_string() << "\n";
          }));
        },
        [&] {
          git_wt.push_back(timed([&] {
            run("git -C " + gm.string() + " worktree add -q --detach " + b.string() + " " + sha);
          }));
        },
        [&] {
          git_archive.push_back(timed([&] {
            fs::create_directories(c);
            run("git -C " + gm.string() + " archive " + sha + " | tar -x -C " + c.string());
          }));
        }};
    std::rotate(order.begin(), order.begin() + r % 3, order.end());
    for (auto& step : order) step();
    fs::remove_all(a);
    fs::remove_all(b);
    fs::remove_all(c);
    run("git -C " + gm.string() + " worktree prune");
  }

  std::printf("\nrepository: %d files, %d commits, mirror %s; median of %d runs\n", kFiles, kCommits,
              size.c_str(), runs);
  print_row("cold mirror", median(ours_cold), "git clone --mirror", median(git_cold));
  print_row("warm fetch of one new commit", median(ours_warm), "git fetch", median(git_warm));
  print_row("checkout of one commit", median(ours_co), "git worktree add", median(git_wt));
  print_row("checkout of one commit", median(ours_co), "git archive | tar x", median(git_archive));
  fs::remove_all(root);
  return 0;
}
