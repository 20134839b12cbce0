#pragma once

// What the benches (tests/bench) share: running shell commands, starting and
// stopping the servers they measure, and percentiles of their figures.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.h"

namespace sandci::bench {

using sandci::testing::free_port;
using sandci::testing::port_open;
using sandci::testing::wait_for_port;

// Runs a shell command; its exit status as std::system gives it.
inline int sh(const std::string& command) { return std::system(command.c_str()); }

// The standard output of a shell command, without its trailing line ends.
inline std::string capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  char buf[4096];
  while (pipe && fgets(buf, sizeof buf, pipe)) out += buf;
  if (pipe) pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// Starts argv with its output appended to log; the child dies with the bench,
// however the bench ends.
inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    FILE* f = fopen(log.c_str(), "a");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// SIGTERM, then SIGKILL if pid has not ended within grace; reaps it.
inline void stop(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (auto waited = std::chrono::milliseconds(0); waited < grace; waited += std::chrono::milliseconds(50)) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// The p-th percentile (0..1) of values, nearest rank; 0 for none.
inline double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

}  // namespace sandci::bench
