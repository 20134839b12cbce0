#pragma once
// Running the real `sandci` binary from tests: a temporary folder, and a run of
// one subcommand with its stdout and stderr captured apart.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "support/temp_dir.h"

namespace sandci::testing {

namespace fs = std::filesystem;

// The shared TempDir, named sandci-cli-XXXXXX unless a test gives its own prefix.
class CliTempDir : public TempDir {
 public:
  explicit CliTempDir(const std::string& prefix = "sandci-cli-") : TempDir(prefix) {}
};

struct CliOutput {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp_file(const fs::path& file) {
  std::ifstream in{file};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Single-quotes `s` for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string{"'\\''"} : std::string{c};
  return q + "'";
}

// Runs `sandci <subcommand> <args>` (args as shell words) in `cwd`.
inline CliOutput run_sandci(const std::string& subcommand, const std::string& args, const fs::path& cwd) {
  CliTempDir capture("sandci-cli-capture-");
  const fs::path out = capture.path() / "out", err = capture.path() / "err";
  const std::string command = "cd " + shell_quote(cwd.string()) + " && " + shell_quote(SANDCI_BINARY) + " " +
                              subcommand + " " + args + " >" + shell_quote(out.string()) + " 2>" +
                              shell_quote(err.string());
  const int status = std::system(command.c_str());
  CliOutput result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = slurp_file(out);
  result.err = slurp_file(err);
  return result;
}

}  // namespace sandci::testing
