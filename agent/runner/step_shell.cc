#include "agent/runner/step_shell.h"

#include <sstream>

namespace sandci::agent {

std::vector<std::string> StepShell::argv(const std::string& script_path) const {
  std::vector<std::string> out;
  for (const auto& part : command) {
    std::string arg = part;
    for (auto at = arg.find("{0}"); at != std::string::npos; at = arg.find("{0}", at + script_path.size()))
      arg.replace(at, 3, script_path);
    out.push_back(std::move(arg));
  }
  return out;
}

std::expected<StepShell, std::string> resolve_shell(std::string_view shell, bool image_has_bash) {
  if (shell.empty())
    return image_has_bash ? StepShell{{"bash", "-e", "{0}"}, ".sh"} : StepShell{{"sh", "-e", "{0}"}, ".sh"};
  if (shell == "bash") return StepShell{{"bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"}, ".sh"};
  if (shell == "sh") return StepShell{{"sh", "-e", "{0}"}, ".sh"};
  if (shell == "python") return StepShell{{"python3", "{0}"}, ".py"};
  if (shell.find("{0}") == std::string_view::npos)
    return std::unexpected("unsupported shell '" + std::string(shell) +
                           "': use bash, sh, python, or a command holding {0} such as 'perl {0}'");
  StepShell custom;
  std::istringstream words{std::string(shell)};
  for (std::string word; words >> word;) custom.command.push_back(word);
  custom.extension = "";
  return custom;
}

}  // namespace sandci::agent
