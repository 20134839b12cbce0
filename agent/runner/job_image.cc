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

std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const std::map<std::string, std::string>& labels) {
  if (job.container && !job.container->image.empty()) return std::nullopt;
  std::optional<std::string> other_os;
  for (const auto& label : job.runs_on) {
    auto text = scheduler::interpolate(label, context);
    if (!text) continue;
    if (labels.contains(*text)) return std::nullopt;
    if (!other_os && scheduler::names_another_os(*text)) other_os = *text;
  }
  return other_os;
}

}  // namespace sandci::agent
