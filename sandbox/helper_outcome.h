#pragma once
// What both backends say when one of their own helper commands (cat, tar, mkdir run
// inside the sandbox for write_file, read_file, copy_in, copy_out) fails: the same
// wording whichever backend ran it.
#include <chrono>
#include <cstdint>
#include <expected>
#include <string>

#include "sandbox/sandbox.h"

namespace sandci::sandbox {

// How much of a helper's stderr is kept for its error message.
inline constexpr std::uint64_t kHelperStderrBytes = 16 * 1024;

// The start of `text` (at most `max` bytes), without trailing newlines or spaces.
std::string first_lines(const std::string& text, std::size_t max = 512);

// A callback that joins every line a helper prints into `messages` ("a; b").
LineCallback collect_messages(std::string& messages);

// How long a backend's own helpers may take before the sandbox is taken for
// wedged (its runtime blocks for good on a sandbox that stopped answering) and
// stopped: small files (write_file, read_file) and copies (copy_in, copy_out: a
// checkout, artifacts; minutes are normal). Tests shorten them.
struct HelperBounds {
  std::chrono::milliseconds file = std::chrono::minutes(5);
  std::chrono::milliseconds copy = std::chrono::minutes(30);
};
// How long a command may go on running once its sandbox is dead or cancelled
// (the runtime normally ends it at once) before sandci stops waiting for it.
inline constexpr std::chrono::milliseconds kDeadExecGrace = std::chrono::seconds(5);
// The sandbox's dead reason after a helper got no answer for `bound`.
std::string stopped_answering(std::chrono::milliseconds bound);
// The failed helper's detail (its ExitStatus::detail, kind kTimedOut).
std::string no_answer_after(std::chrono::milliseconds bound);

// Success, or "<what> failed: <kind> (<detail>): <first lines of messages>".
std::expected<void, SandboxError> helper_outcome(const std::string& what, const ExitStatus& status,
                                                 const std::string& messages);

}  // namespace sandci::sandbox
