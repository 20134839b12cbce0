#pragma once
// What both backends say when one of their own helper commands (cat, tar, mkdir run
// inside the sandbox for write_file, read_file, copy_in, copy_out) fails: the same
// wording whichever backend ran it.
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

// Success, or "<what> failed: <kind> (<detail>): <first lines of messages>".
std::expected<void, SandboxError> helper_outcome(const std::string& what, const ExitStatus& status,
                                                 const std::string& messages);

}  // namespace sandci::sandbox
