#include "agent/runner/job_image.h"

#include <sys/utsname.h>

#include "sandbox/docker_backend.h"
#include "scheduler/runs_on_label.h"

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

ImageSource image_source_for(sandbox::SandboxBackend& backend, const sandbox::ImageStore& store) {
  if (auto* docker = dynamic_cast<sandbox::DockerBackend*>(&backend))
    return [docker](std::string_view name) { return docker->image_info(name); };
  return [&store](std::string_view name) { return store.lookup(name); };
}

bool image_present(sandbox::SandboxBackend& backend, const sandbox::ImageStore& store, std::string_view name) {
  if (auto* docker = dynamic_cast<sandbox::DockerBackend*>(&backend)) return docker->has_image(name);
  return store.lookup(name).has_value();
}

const std::string& host_architecture() {
  static const std::string arch = [] {
    utsname name{};
    if (uname(&name) != 0) return std::string("x86_64");
    // As runs_on_architecture() spells them.
    const std::string machine = name.machine;
    if (machine == "arm64") return std::string("aarch64");
    if (machine == "amd64") return std::string("x86_64");
    if (machine == "armv7l") return std::string("armv7");
    return machine;
  }();
  return arch;
}

bool names_foreign_architecture(std::string_view label, const LabelMap& labels, std::string_view host_arch) {
  if (scheduler::names_another_os(label)) return false;  // macos-14-arm64: the OS is what is missing
  const auto arch = scheduler::runs_on_architecture(label);
  if (!arch || *arch == host_arch) return false;
  if (labels.contains(std::string(label))) return false;
  // A pattern counts only when it names the architecture itself (`ubuntu-24.04-arm*`):
  // the default `ubuntu-*` mapping is for this host's machines.
  for (const auto& [key, image] : labels) {
    if (key.empty() || key.back() != '*') continue;
    const std::string_view prefix = std::string_view(key).substr(0, key.size() - 1);
    if (label.starts_with(prefix) && scheduler::runs_on_architecture(prefix) == arch) return false;
  }
  return true;
}

std::string no_runner_reason(std::string_view label, std::string_view host_arch) {
  std::string why = "no runner for label '" + std::string(label) + "'";
  if (!scheduler::names_another_os(label) && scheduler::runs_on_architecture(label)) why += " (this agent runs " + std::string(host_arch) + ")";
  return why;
}

std::string no_runner_reason(std::string_view label) { return no_runner_reason(label, host_architecture()); }

std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const LabelMap& labels, std::string_view host_arch) {
  std::vector<std::string> texts;
  for (const auto& label : job.runs_on)
    if (auto text = scheduler::interpolate(label, context)) texts.push_back(std::move(*text));
  // A machine of another architecture: its container images would be too.
  for (const auto& text : texts)
    if (names_foreign_architecture(text, labels, host_arch)) return text;
  if (job.container && !job.container->image.empty()) return std::nullopt;
  // A label naming another OS decides, even beside one that maps (`[self-hosted,
  // windows]`): running that job on Linux would only fail later and less clearly.
  for (const auto& text : texts)
    if (scheduler::names_another_os(text) && !image_for_label(labels, text)) return text;
  return std::nullopt;
}

std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const LabelMap& labels) {
  return missing_runner(job, context, labels, host_architecture());
}

}  // namespace sandci::agent
