#include "agent/runner/job_image.h"


namespace sandci::agent {

std::expected<std::string, std::string> choose_image(const scheduler::Job& job,
                                                     const scheduler::EvalContext& context,
                                                     const std::string& default_image,
                                                     const std::map<std::string, std::string>& labels) {
  if (job.container && !job.container->image.empty()) {
    auto image = scheduler::interpolate(job.container->image, context);
    if (!image) return std::unexpected("container.image: " + image.error().message);
    if (image->empty()) return std::unexpected("container.image is empty");
    return *image;
  }
  for (const auto& label : job.runs_on) {
    auto text = scheduler::interpolate(label, context);
    if (!text) continue;
    if (auto it = labels.find(*text); it != labels.end()) return it->second;
  }
  return default_image;
}

}  // namespace sandci::agent
