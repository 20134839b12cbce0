#pragma once
// How a `run:` step's script is run, from its `shell:` (GitHub Actions' rules).
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent {

struct StepShell {
  std::vector<std::string> command;  // "{0}" stands for the script's path
  std::string extension;             // of the script file (".sh", ".py")
  // The command with {0} replaced by `script_path`.
  std::vector<std::string> argv(const std::string& script_path) const;
};

// The shell for `shell:` (empty: the default, `bash -e {0}`, or `sh -e {0}` when the
// image has no bash). Known names: bash, sh, python; anything else must be a custom
// command holding "{0}" ("perl {0}"). Errors say what is accepted.
std::expected<StepShell, std::string> resolve_shell(std::string_view shell, bool image_has_bash);

}  // namespace sandci::agent
