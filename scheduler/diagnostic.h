#pragma once
// Errors about user input (workflow files, expressions) are values that carry
// the place they point at, so the CLI can print file:line:col.
#include <string>
#include <vector>

namespace sandci::scheduler {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

enum class Severity {
  error,  // the file is refused
  note,   // accepted, but the user should know (a key sandci ignores, an event it does not run)
};

struct Diagnostic {
  SourceLocation location;
  std::string message;
  Severity severity = Severity::error;

  // "file:line:col: error: message" or "...: note: message" (missing parts are left out).
  std::string to_string() const;
};

using Diagnostics = std::vector<Diagnostic>;

// How many of `diagnostics` are errors (notes do not count).
std::size_t error_count(const Diagnostics& diagnostics);

}  // namespace sandci::scheduler
