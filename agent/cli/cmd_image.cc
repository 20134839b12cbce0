// `sandci image ...`: the image store from the command line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "agent/cli/cli.h"
#include "sandbox/image_presets.h"
#include "sandbox/image_store.h"

namespace sandci::agent {
namespace {

namespace sb = sandci::sandbox;

int report(const sb::ImageError& error) {
  std::cerr << "sandci: " << error.message << "\n";
  return error.kind == sb::ImageErrorKind::kFailed ? kExitRunFailed : kExitUsage;
}

std::string human_size(std::uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000ull * 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  } else if (bytes >= 1000ull * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f kB", static_cast<double>(bytes) / 1e3);
  }
  return buf;
}

// Each subcommand takes --state-dir, so it can be given after the subcommand's name.
void add_state_dir(CLI::App* cmd, std::shared_ptr<std::string> state_dir) {
  cmd->add_option("--state-dir", *state_dir,
                  "sandci's state folder (default: $SANDCI_STATE_DIR, else /var/lib/sandci)");
}

sb::ImageStore open_store(const std::string& state_dir) {
  return sb::ImageStore(state_dir.empty() ? sb::default_state_dir() : std::filesystem::path(state_dir));
}

int do_list(const std::string& state_dir) {
  auto images = open_store(state_dir).list();
  if (!images) return report(images.error());
  std::printf("%-40s %10s  %s\n", "NAME", "SIZE", "CREATED");
  for (const auto& image : *images) {
    std::printf("%-40s %10s  %s\n", image.name.c_str(), human_size(image.size_bytes).c_str(), image.created.c_str());
  }
  return kExitOk;
}

int do_inspect(const std::string& state_dir, const std::string& name) {
  auto image = open_store(state_dir).lookup(name);
  if (!image) return report(image.error());
  std::cout << "name: " << image->name << "\n"
            << "rootfs: " << image->rootfs.string() << "\n"
            << "created: " << image->created << "\n"
            << "size: " << human_size(image->size_bytes) << "\n"
            << "source: " << image->source << "\n"
            << "working_dir: " << image->config.working_dir << "\n"
            << "user: " << image->config.user << "\n";
  for (const auto& e : image->config.env) std::cout << "env: " << e << "\n";
  return kExitOk;
}

int do_remove(const std::string& state_dir, const std::vector<std::string>& names) {
  auto store = open_store(state_dir);
  int code = kExitOk;
  for (const auto& name : names) {
    if (auto r = store.remove(name); !r) {
      code = std::max(code, report(r.error()));
    } else {
      std::cout << "removed " << *sb::normalize_image_name(name) << "\n";
    }
  }
  return code;
}

int do_import(const std::string& state_dir, const std::string& name, const std::string& source) {
  auto image = open_store(state_dir).import(name, source);
  if (!image) return report(image.error());
  std::cout << "imported " << image->name << " (" << human_size(image->size_bytes) << ") into "
            << image->rootfs.parent_path().string() << "\n";
  return kExitOk;
}

int do_pull(const std::string& state_dir, const std::string& ref, std::string name) {
  if (name.empty()) {
    // Only registry references name themselves; a file or folder source needs a NAME.
    if (sb::has_skopeo_transport(ref) && !ref.starts_with("docker://")) {
      std::cerr << "sandci: give a NAME to store '" << ref << "' under (sandci image pull REF NAME)\n";
      return kExitUsage;
    }
    name = ref.starts_with("docker://") ? ref.substr(9) : ref;
  }
  auto image = open_store(state_dir).pull(ref, name);
  if (!image) return report(image.error());
  std::cout << "pulled " << ref << " as " << image->name << " (" << human_size(image->size_bytes) << ")\n";
  return kExitOk;
}

int do_build_default(const std::string& state_dir, bool force, const std::string& preset_name,
                     std::string name, const std::vector<std::string>& packages) {
  const sb::ImagePreset* preset = sb::find_image_preset(preset_name);
  if (!preset) {
    std::cerr << "sandci: no image preset '" << preset_name << "'; presets:\n";
    for (const auto& p : sb::image_presets()) std::cerr << "  " << p.name << "  " << p.description << "\n";
    return kExitUsage;
  }
  if (name.empty()) name = std::string(preset->image);
  auto store = open_store(state_dir);
  std::cout << "building " << name << " (debootstrap, a few minutes) unless it is there...\n" << std::flush;
  sb::BuildDefaultOptions options;
  options.force = force;
  options.preset = preset_name;
  options.name = name;
  options.extra_packages = packages;
  auto result = store.build_default(options);
  if (!result) return report(result.error());
  if (result->built) {
    std::cout << "built " << result->image.name << " (" << human_size(result->image.size_bytes) << ") in "
              << result->image.rootfs.parent_path().string() << "\n";
  } else {
    std::cout << result->image.name << " is already there (" << result->image.rootfs.parent_path().string()
              << "); use --force to rebuild it\n";
  }
  return kExitOk;
}

}  // namespace

void add_image_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("image", "Manage the job images (root filesystems) in the image store");
  cmd->require_subcommand(1);
  auto state_dir = std::make_shared<std::string>();

  auto* list = cmd->add_subcommand("list", "List the images: name, size, creation time");
  add_state_dir(list, state_dir);
  list->callback([&action, state_dir] { action = [state_dir] { return do_list(*state_dir); }; });

  auto name = std::make_shared<std::string>();
  auto* inspect = cmd->add_subcommand("inspect", "Show an image's root filesystem folder and config");
  inspect->add_option("name", *name, "Image name, e.g. debian:12")->required();
  add_state_dir(inspect, state_dir);
  inspect->callback([&action, state_dir, name] { action = [state_dir, name] { return do_inspect(*state_dir, *name); }; });

  auto names = std::make_shared<std::vector<std::string>>();
  auto* rm = cmd->add_subcommand("rm", "Remove images");
  rm->add_option("names", *names, "Image names")->required();
  add_state_dir(rm, state_dir);
  rm->callback([&action, state_dir, names] { action = [state_dir, names] { return do_remove(*state_dir, *names); }; });

  auto source = std::make_shared<std::string>();
  auto* import = cmd->add_subcommand(
      "import", "Add an image from a rootfs tarball (plain or gzip), a `docker save` archive or an OCI layout");
  import->add_option("name", *name, "Name to store it under, e.g. myimg:1 (tag defaults to latest)")->required();
  import->add_option("tarball", *source, "The archive (or an OCI layout folder)")->required();
  add_state_dir(import, state_dir);
  import->callback([&action, state_dir, name, source] {
    action = [state_dir, name, source] { return do_import(*state_dir, *name, *source); };
  });

  auto ref = std::make_shared<std::string>();
  auto* pull = cmd->add_subcommand("pull", "Copy an image with skopeo (registry, oci:, docker-archive: ...) and add it");
  pull->add_option("ref", *ref, "A skopeo reference; without a transport, docker:// is assumed")->required();
  pull->add_option("name", *name, "Name to store it under (default: the reference itself)");
  add_state_dir(pull, state_dir);
  pull->callback([&action, state_dir, ref, name] {
    action = [state_dir, ref, name] { return do_pull(*state_dir, *ref, *name); };
  });

  auto force = std::make_shared<bool>(false);
  auto* build = cmd->add_subcommand(
      "build-default",
      "Build an image from Debian packages with debootstrap: debian:12 (--preset minimal, the default) or "
      "sandci-runner:12 (--preset runner, what ubuntu-* jobs expect); once, --force rebuilds it");
  build->add_flag("--force", *force, "Rebuild even if the image is there");
  auto preset = std::make_shared<std::string>("minimal");
  std::string presets_help = "The package set:";
  for (const auto& p : sb::image_presets())
    presets_help += "\n  " + std::string(p.name) + ": " + std::string(p.description) + " (" + std::string(p.image) + ")";
  build->add_option("--preset", *preset, presets_help)->capture_default_str();
  auto image_name = std::make_shared<std::string>();
  auto packages = std::make_shared<std::vector<std::string>>();
  build->add_option("--name", *image_name, "Store it under this name (default: the preset's image name)");
  build->add_option("--include", *packages, "More Debian packages, comma-separated (e.g. gcc,make,libc6-dev)")
      ->delimiter(',');
  add_state_dir(build, state_dir);
  build->callback([&action, state_dir, force, preset, image_name, packages] {
    action = [state_dir, force, preset, image_name, packages] {
      return do_build_default(*state_dir, *force, *preset, *image_name, *packages);
    };
  });
}

}  // namespace sandci::agent
