#pragma once
// Running the outside programs the image store relies on (debootstrap, skopeo):
// argv only, never a shell, stdin from /dev/null, output captured for messages.
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace sandci::sandbox {

struct ToolResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string output;  // stdout and stderr interleaved, the last `max_output` bytes
};

// Runs argv[0] (looked up in PATH) and waits for it. An error value only when the
// program could not be started (missing binary): a failing run is a ToolResult.
std::expected<ToolResult, std::string> run_tool(const std::vector<std::string>& argv,
                                                std::size_t max_output = 64 * 1024);

// The last `lines` lines of `text`, for error messages that quote a tool's output.
std::string tail_lines(const std::string& text, int lines);

// Deletes a folder tree without ever leaving its file system: anything mounted
// under it (a debootstrap killed half-way leaves /proc, /sys and bind-mounted /dev
// nodes in its target) is detached first, and the walk does not cross mount points.
// Returns the first error, having deleted what it could.
std::error_code remove_tree(const std::filesystem::path& root);

}  // namespace sandci::sandbox
