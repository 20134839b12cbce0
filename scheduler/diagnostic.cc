#include "scheduler/diagnostic.h"

namespace sandci::scheduler {

std::string Diagnostic::to_string() const {
  std::string out = location.file;
  if (location.line > 0) {
    out += ":" + std::to_string(location.line);
    if (location.column > 0) out += ":" + std::to_string(location.column);
  }
  if (!out.empty()) out += ": ";
  return out + "error: " + message;
}

}  // namespace sandci::scheduler
