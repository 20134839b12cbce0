#include "sandbox/helper_outcome.h"

namespace sandci::sandbox {

std::string first_lines(const std::string& text, std::size_t max) {
  std::string s = text.substr(0, max);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

LineCallback collect_messages(std::string& messages) {
  return [&messages](const OutputLine& line) {
    if (!messages.empty()) messages += "; ";
    messages += line.text;
  };
}

std::string stopped_answering(std::chrono::milliseconds bound) {
  return "it stopped answering (a command of sandci's got no answer for " + std::to_string(bound.count()) +
         " ms) and was stopped";
}

std::string no_answer_after(std::chrono::milliseconds bound) {
  return "no answer after " + std::to_string(bound.count()) + " ms: the sandbox was stopped";
}

std::expected<void, SandboxError> helper_outcome(const std::string& what, const ExitStatus& status,
                                                 const std::string& messages) {
  if (status.success()) return {};
  std::string message = what + " failed: " + to_string(status.kind) + " (" + status.detail + ")";
  if (!messages.empty()) message += ": " + first_lines(messages);
  return std::unexpected(SandboxError{message});
}

}  // namespace sandci::sandbox
