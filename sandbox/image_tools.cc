#include "sandbox/image_tools.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace sandci::sandbox {

std::expected<ToolResult, std::string> run_tool(const std::vector<std::string>& argv,
                                                std::size_t max_output) {
  if (argv.empty()) return std::unexpected("no program given");
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return std::unexpected(std::string("pipe: ") + std::strerror(errno));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return std::unexpected("cannot run " + argv[0] + ": " + std::strerror(rc));
  }

  ToolResult result;
  char buf[16384];
  for (;;) {
    ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
    if (result.output.size() > 2 * max_output) result.output.erase(0, result.output.size() - max_output);
  }
  close(pipe_fds[0]);
  if (result.output.size() > max_output) result.output.erase(0, result.output.size() - max_output);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::unexpected("waitpid: " + std::string(std::strerror(errno)));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // posix_spawnp reports a missing program as exit 127 from the child.
  if (result.exit_code == 127 && result.output.empty())
    return std::unexpected("cannot run " + argv[0] + ": not found in PATH");
  return result;
}

std::string tail_lines(const std::string& text, int lines) {
  std::vector<std::string> all;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) all.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string out;
  std::size_t first = all.size() > static_cast<std::size_t>(lines) ? all.size() - lines : 0;
  for (std::size_t i = first; i < all.size(); ++i) out += (out.empty() ? "" : "\n") + all[i];
  return out;
}

}  // namespace sandci::sandbox
