#pragma once
// Which image a job runs in.
#include <expected>
#include <map>
#include <optional>
#include <string>

#include "scheduler/expression.h"
#include "scheduler/workflow.h"

namespace sandci::agent {

// `container.image` (interpolated) wins; else the first `runs-on` label that the
// label map knows; else the default image. `runs-on` labels are otherwise only
// labels: a self-hosted runner has no Windows or macOS to offer.
std::expected<std::string, std::string> choose_image(const scheduler::Job& job,
                                                     const scheduler::EvalContext& context,
                                                     const std::string& default_image,
                                                     const std::map<std::string, std::string>& labels);

// The `runs-on` label of a job that asks for another operating system (macOS,
// Windows) with no image mapped for any of its labels and no container: such a job
// is skipped. nullopt when the job can run here.
std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const std::map<std::string, std::string>& labels);

}  // namespace sandci::agent
