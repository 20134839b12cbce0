#include "sandbox/image_tools.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/mount.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

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

namespace {

// Mount points at or under `root`, from /proc/self/mountinfo (field 5, octal-escaped).
std::vector<std::string> mounts_under(const std::string& root) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, fsroot, point;
    fields >> id >> parent >> devno >> fsroot >> point;
    std::string decoded;
    for (std::size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded += static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        decoded += point[i];
      }
    }
    if (decoded == root || decoded.starts_with(root + "/")) found.push_back(decoded);
  }
  return found;
}

thread_local int remove_errno = 0;

int remove_one(const char* path, const struct stat*, int type, struct FTW*) {
  int rc = (type == FTW_DP || type == FTW_D) ? rmdir(path) : unlink(path);
  if (rc != 0 && remove_errno == 0) remove_errno = errno;
  return 0;  // keep going: delete what can be deleted
}

}  // namespace

std::error_code remove_tree(const std::filesystem::path& root) {
  std::error_code ec;
  auto status = std::filesystem::symlink_status(root, ec);
  if (ec || !std::filesystem::exists(status)) return {};
  if (!std::filesystem::is_directory(status)) {
    std::filesystem::remove(root, ec);
    return ec;
  }
  std::string real = std::filesystem::canonical(root, ec).string();
  if (ec) return ec;
  auto mounts = mounts_under(real);
  // Deepest first, so that nested mounts come off before their parents.
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) umount2(m.c_str(), MNT_DETACH);
  remove_errno = 0;
  // FTW_MOUNT: stay on root's file system; FTW_PHYS: never follow symbolic links.
  if (nftw(real.c_str(), remove_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
    return std::error_code(errno, std::generic_category());
  return remove_errno == 0 ? std::error_code() : std::error_code(remove_errno, std::generic_category());
}

}  // namespace sandci::sandbox
