#include "agent/runner/job_image.h"

namespace sandci::agent {

std::optional<std::string> image_for_label(const LabelMap& labels, std::string_view label) {
  if (auto it = labels.find(std::string(label)); it != labels.end()) return it->second;
  const std::string* best = nullptr;
  std::size_t best_prefix = 0;
  for (const auto& [key, image] : labels) {
    if (key.empty() || key.back() != '*') continue;
    const std::string_view prefix = std::string_view(key).substr(0, key.size() - 1);
    if (label.starts_with(prefix) && (!best || prefix.size() > best_prefix)) {
      best = &image;
      best_prefix = prefix.size();
    }
  }
  if (best) return *best;
  return std::nullopt;
}

LabelMap with_runner_labels(LabelMap labels, bool runner_image_present, std::string_view runner_image) {
  if (!runner_image_present) return labels;
  for (const char* key : {"ubuntu-*", "self-hosted"}) labels.emplace(key, std::string(runner_image));
  return labels;
}

std::expected<std::string, std::string> choose_image(const scheduler::Job& job,
                                                     const scheduler::EvalContext& context,
                                                     const std::string& default_image,
                                                     const LabelMap& labels) {
  if (job.container && !job.container->image.empty()) {
    auto image = scheduler::interpolate(job.container->image, context);
    if (!image) return std::unexpected("container.image: " + image.error().message);
    if (image->empty()) return std::unexpected("container.image is empty");
    return *image;
  }
  for (const auto& label : job.runs_on) {
    auto text = scheduler::interpolate(label, context);
    if (!text) continue;
    if (auto image = image_for_label(labels, *text)) return *image;
  }
  return default_image;
}

std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const LabelMap& labels) {
  if (job.container && !job.container->image.empty()) return std::nullopt;
  // A label naming another OS decides, even beside one that maps (`[self-hosted,
  // windows]`): running that job on Linux would only fail later and less clearly.
  for (const auto& label : job.runs_on) {
    auto text = scheduler::interpolate(label, context);
    if (!text) continue;
    if (scheduler::names_another_os(*text) && !image_for_label(labels, *text)) return *text;
  }
  return std::nullopt;
}

}  // namespace sandci::agent
