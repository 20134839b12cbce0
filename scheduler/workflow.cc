#include "scheduler/workflow.h"

#include <cctype>

namespace sandci::scheduler {

const Job* Workflow::find_job(const std::string& id) const {
  for (const auto& job : jobs)
    if (job.id == id) return &job;
  return nullptr;
}

bool names_another_os(std::string_view label) {
  auto starts_with = [&](std::string_view prefix) {
    if (label.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(label[i])) != prefix[i]) return false;
    return true;
  };
  return starts_with("macos") || starts_with("windows");
}

}  // namespace sandci::scheduler
