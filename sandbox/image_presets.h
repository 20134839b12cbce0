#pragma once
// The images `sandci image build-default --preset NAME` builds from Debian packages,
// as data: the docs' package table and the builder read the same lists.
#include <span>
#include <string_view>

namespace sandci::sandbox {

struct ImagePreset {
  std::string_view name;          // "minimal", "runner"
  std::string_view image;         // the image it is stored as by default
  std::string_view description;   // one line, for --help and the docs
  // Debian packages beyond debootstrap's minbase: `base` go to debootstrap's
  // --include; `tools` are installed afterwards by apt-get inside the new root
  // (debootstrap's own resolver fails on large sets).
  std::span<const std::string_view> base;
  std::span<const std::string_view> tools;
  // Lines for /etc/sudoers.d/sandci; empty: the preset leaves sudo alone.
  std::string_view sudoers;
  // Content for /etc/pip.conf; empty: none is written.
  std::string_view pip_conf = {};
  // "NAME=value" lines added to the image's Env.
  std::span<const std::string_view> env = {};
};

// Every preset, "minimal" first (the default image jobs run in when nothing else is asked).
std::span<const ImagePreset> image_presets();

// The preset called `name`; nullptr when there is none.
const ImagePreset* find_image_preset(std::string_view name);

// The image the "runner" preset builds: what `ubuntu-*` and `self-hosted` labels map
// to when it is in the store.
inline constexpr std::string_view kRunnerImage = "sandci-runner:12";

}  // namespace sandci::sandbox
