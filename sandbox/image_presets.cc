#include "sandbox/image_presets.h"

#include <array>

namespace sandci::sandbox {
namespace {

constexpr std::string_view kMinimalPackages[] = {"bash", "git", "ca-certificates", "coreutils", "findutils"};

// What workflows written for GitHub's ubuntu-latest take for granted, from Debian
// packages: compilers and build tools, the scripting languages, archive and
// network tools, and sudo. Kept to what real projects' CI steps call without
// installing anything first.
constexpr std::string_view kRunnerTools[] = {
    // building C and C++
    "build-essential", "cmake", "ninja-build", "pkg-config", "autoconf", "automake", "libtool", "clang",
    "libssl-dev",
    // scripting languages
    "python3", "python3-pip", "python3-venv", "python3-dev", "pipx", "nodejs", "npm", "perl",
    // tools steps call
    "curl", "wget", "jq", "zip", "unzip", "xz-utils", "bzip2", "zstd", "file", "patch", "rsync", "gawk",
    "openssh-client", "gnupg", "lsb-release", "procps", "less", "tzdata", "sudo", "git-lfs", "shellcheck",
    "sqlite3", "gettext-base"};

// Jobs run as root in these images, where sudo needs no rule; the rule lets a
// job that switches to another user (`useradd builder; su builder`) get back.
constexpr std::string_view kRunnerSudoers =
    "# Written by sandci: a CI job may use sudo without a password, as on GitHub's runners.\n"
    "ALL ALL=(ALL:ALL) NOPASSWD: ALL\n";

// GitHub's runners let `pip install` write the system Python; Debian 12's pip
// refuses it (PEP 668, "externally-managed-environment") unless told otherwise.
// The file covers `sudo pip install` too, whose environment sudo resets.
constexpr std::string_view kRunnerPipConf =
    "# Written by sandci: pip may install into the system Python, as on GitHub's runners.\n"
    "[global]\n"
    "break-system-packages = true\n";
constexpr std::string_view kRunnerEnv[] = {"PIP_BREAK_SYSTEM_PACKAGES=1"};

constexpr std::array kPresets = {
    ImagePreset{"minimal", "debian:12", "Debian 12 minbase with bash, git and CA certificates", kMinimalPackages, {}, ""},
    ImagePreset{"runner", kRunnerImage,
                "Debian 12 with compilers, cmake, Python, Node.js, curl, jq, zip and sudo, for ubuntu-* jobs",
                kMinimalPackages, kRunnerTools, kRunnerSudoers, kRunnerPipConf, kRunnerEnv},
};

}  // namespace

std::span<const ImagePreset> image_presets() { return kPresets; }

const ImagePreset* find_image_preset(std::string_view name) {
  for (const auto& preset : kPresets)
    if (preset.name == name) return &preset;
  return nullptr;
}

}  // namespace sandci::sandbox
