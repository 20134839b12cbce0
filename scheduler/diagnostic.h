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

struct Diagnostic {
  SourceLocation location;
  std::string message;

  // "file:line:col: error: message" (missing parts are left out).
  std::string to_string() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace sandci::scheduler
