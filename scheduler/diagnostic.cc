#include "scheduler/diagnostic.h"

#include <algorithm>

namespace sandci::scheduler {

std::string Diagnostic::to_string() const {
  std::string out = location.file;
  if (location.line > 0) {
    out += ":" + std::to_string(location.line);
    if (location.column > 0) out += ":" + std::to_string(location.column);
  }
  if (!out.empty()) out += ": ";
  return out + (severity == Severity::note ? "note: " : "error: ") + message;
}

std::size_t error_count(const Diagnostics& diagnostics) {
  return static_cast<std::size_t>(std::count_if(
      diagnostics.begin(), diagnostics.end(),
      [](const Diagnostic& d) { return d.severity == Severity::error; }));
}

}  // namespace sandci::scheduler
