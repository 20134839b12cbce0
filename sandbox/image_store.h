#pragma once
// The image store: job images as read-only root filesystem folders under the state
// folder, one per name, each with a small config.json:
//   <state>/images/<escaped name>/rootfs       the root filesystem (never written)
//   <state>/images/<escaped name>/config.json  name, Env, WorkingDir, User, size, created
// Writers build in a hidden temp folder beside it and rename it into place
// (renameat2 RENAME_EXCHANGE to replace), so a reader sees an image whole or not
// at all. Writers of one name are serialised by a lock file.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/image_archive.h"

namespace sandci::sandbox {

struct ImageInfo {
  std::string name;  // normalised, "repo:tag"
  std::filesystem::path rootfs;
  ImageConfig config;
  std::string created;  // UTC, RFC 3339
  std::uint64_t size_bytes = 0;  // of the root filesystem's files
  std::string source;   // where it came from, for people
};

// The default image, built by build_default().
inline constexpr std::string_view kDefaultImage = "debian:12";

// "myimg" -> "myimg:latest"; refuses what is not a Docker-style name[:tag]
// (lowercase path components, optional registry host[:port], tag [A-Za-z0-9_.-]).
std::expected<std::string, ImageError> normalize_image_name(std::string_view name);

// True when `ref` starts with a skopeo transport ("docker://", "oci:", "docker-archive:"...).
bool has_skopeo_transport(std::string_view ref);

// The numeric ids for an image config's User ("", "uid", "name", "uid:gid",
// "name:group"), looked up in the image's own /etc/passwd and /etc/group (never the
// host's, never through a symbolic link). As Docker does: "" is root; a user
// without a group takes their passwd group, or 0 for a uid absent from passwd.
struct UserIds {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};
std::expected<UserIds, ImageError> resolve_image_user(const std::filesystem::path& rootfs, std::string_view user);

// $SANDCI_STATE_DIR when set and not empty, else /var/lib/sandci.
std::filesystem::path default_state_dir();

// The first non-security `URIs:` entry of a deb822 apt sources file.
std::expected<std::string, ImageError> parse_debian_mirror(std::string_view deb822_text);

struct BuildDefaultOptions {
  bool force = false;       // rebuild even when the image is there
  // The package set (image_presets.h): "minimal" is the default image, "runner"
  // what ubuntu-* workflows expect.
  std::string preset = "minimal";
  // Another name and more Debian packages make a variant of the preset
  // (e.g. debian-build:12 with gcc, make and libc6-dev for a C project).
  std::string name = std::string(kDefaultImage);
  std::vector<std::string> extra_packages;
  std::string mirror;       // empty: read from /etc/apt/sources.list.d/debian.sources
  std::string sources_file = "/etc/apt/sources.list.d/debian.sources";
};

struct BuildDefaultResult {
  ImageInfo image;
  bool built = false;  // false: it was already there
};

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path state_dir);

  std::filesystem::path images_dir() const { return state_dir_ / "images"; }

  // The image's root filesystem and config, or kNotFound with a message that says
  // how to get one.
  std::expected<ImageInfo, ImageError> lookup(std::string_view name) const;
  // Every image, sorted by name.
  std::expected<std::vector<ImageInfo>, ImageError> list() const;
  std::expected<void, ImageError> remove(std::string_view name);
  // Adds (or replaces) `name` from a rootfs tarball, a docker save archive, or an
  // OCI image layout (tarball or folder). See image_archive.h for the checks.
  std::expected<ImageInfo, ImageError> import(std::string_view name, const std::filesystem::path& source);
  // Builds the preset's image (debian:12 by default) with debootstrap unless it is
  // there (or `force`).
  std::expected<BuildDefaultResult, ImageError> build_default(const BuildDefaultOptions& options);
  // Copies `ref` (skopeo transport syntax; a bare reference means docker://) into a
  // temporary OCI layout with skopeo, then imports it as `name`.
  std::expected<ImageInfo, ImageError> pull(std::string_view ref, std::string_view name);

 private:
  std::filesystem::path image_dir(const std::string& normalized) const;
  std::expected<std::filesystem::path, ImageError> make_temp_dir() const;
  std::expected<ImageInfo, ImageError> commit(const std::filesystem::path& temp, const std::string& name,
                                              const ImageConfig& config, const std::string& source);
  std::filesystem::path state_dir_;
};

}  // namespace sandci::sandbox
