#pragma once
// Which image a job runs in.
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/image_store.h"
#include "sandbox/sandbox.h"
#include "scheduler/expression.h"
#include "scheduler/workflow.h"

namespace sandci::agent {

// `runs-on` label -> image. A key may end in '*' (`ubuntu-*`): it then matches every
// label with that prefix; an exact key always wins over a pattern, and a longer
// pattern over a shorter one.
using LabelMap = std::map<std::string, std::string>;

// The image `label` maps to; nullopt when no key matches.
std::optional<std::string> image_for_label(const LabelMap& labels, std::string_view label);

// `labels` plus what a runner image gives by default: when `runner_image_present`,
// `ubuntu-*` and `self-hosted` go to `runner_image` unless `labels` says otherwise
// for them. Workflows written for GitHub's ubuntu-latest then find a compiler,
// cmake, Python, Node.js and sudo without any configuration.
LabelMap with_runner_labels(LabelMap labels, bool runner_image_present, std::string_view runner_image);

// `container.image` (interpolated) wins; else the first `runs-on` label that the
// label map knows; else the default image. `runs-on` labels are otherwise only
// labels: a self-hosted runner has no Windows or macOS to offer.
std::expected<std::string, std::string> choose_image(const scheduler::Job& job,
                                                     const scheduler::EvalContext& context,
                                                     const std::string& default_image,
                                                     const LabelMap& labels);

// The `runs-on` label of a job that this agent has no runner for: one asking for
// another operating system (macOS, Windows) that no image is mapped to, for a job
// without a container; or one naming a CPU architecture other than `host_arch`
// (ubuntu-24.04-arm, arm64, linux/arm64... see scheduler::runs_on_architecture),
// container or not, unless the label map names an image for that label itself (an
// exact key, or a pattern whose own text names that architecture: `ubuntu-*` does
// not). Such a job is skipped. nullopt when the job can run here.
std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const LabelMap& labels, std::string_view host_arch);
// The same on this host (host_architecture()).
std::optional<std::string> missing_runner(const scheduler::Job& job, const scheduler::EvalContext& context,
                                          const LabelMap& labels);

// Whether `label` names an architecture other than `host_arch` and the label map
// does not name an image for it as missing_runner() says.
bool names_foreign_architecture(std::string_view label, const LabelMap& labels, std::string_view host_arch);

// Why a job with that label is skipped: "no runner for label 'macos-14'", or for a
// label naming another architecture "no runner for label 'ubuntu-24.04-arm' (this
// agent runs x86_64)".
std::string no_runner_reason(std::string_view label, std::string_view host_arch);
std::string no_runner_reason(std::string_view label);  // on this host

// Where a job's image comes from, by name (the runner's ImageLookup).
using ImageSource = std::function<std::expected<sandbox::ImageInfo, sandbox::ImageError>(std::string_view)>;

// On the Docker backend, `container:` and the label map name the engine's images
// (DockerBackend::image_info: its config, pulled only when the backend allows);
// on any other backend the image store's. `store` must outlive the answer.
ImageSource image_source_for(sandbox::SandboxBackend& backend, const sandbox::ImageStore& store);

// Whether `name` is there for with_runner_labels, where image_source_for looks
// (never pulls).
bool image_present(sandbox::SandboxBackend& backend, const sandbox::ImageStore& store, std::string_view name);

// This host's CPU architecture as uname spells it: x86_64, aarch64...
const std::string& host_architecture();

}  // namespace sandci::agent
