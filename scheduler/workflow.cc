#include "scheduler/workflow.h"

namespace sandci::scheduler {

const Job* Workflow::find_job(const std::string& id) const {
  for (const auto& job : jobs)
    if (job.id == id) return &job;
  return nullptr;
}

}  // namespace sandci::scheduler
