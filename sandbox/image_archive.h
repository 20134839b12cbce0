#pragma once
// Unpacking images into a root filesystem folder: plain rootfs tarballs (gzip or
// not), `docker save` archives and OCI image layouts (as a tarball or a folder).
// Layers are applied in order with their whiteouts. Every member name is checked
// before anything is written: absolute paths, `..` and hard links leaving the tree
// are refused, and nothing is ever written through a symbolic link.
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::sandbox {

// The parts of an image's config that a job's process inherits.
struct ImageConfig {
  std::vector<std::string> env;  // "NAME=VALUE"
  std::string working_dir;       // empty: not set
  std::string user;              // empty: root; "uid[:gid]" or names, as the image says
};

enum class ImageErrorKind {
  kNotFound,  // no such image
  kInvalid,   // bad input: a name, a tarball, a refused member
  kFailed,    // an operation failed (disk, a tool, the network)
};

struct ImageError {
  ImageErrorKind kind = ImageErrorKind::kFailed;
  std::string message;
};

struct UnpackedImage {
  ImageConfig config;
  std::string format;  // "rootfs tarball", "docker save archive", "OCI layout"
};

// Unpacks `source` into `rootfs` (an existing, empty folder). `work_dir` is an
// existing scratch folder on the same machine (archives are unpacked there first).
// `tag` picks the image when an archive holds several (matched against RepoTags or
// the OCI ref name annotation). Runs libarchive, which briefly changes the
// process's working directory while it checks paths: call it from one thread.
std::expected<UnpackedImage, ImageError> unpack_image(const std::filesystem::path& source,
                                                      const std::filesystem::path& rootfs,
                                                      const std::filesystem::path& work_dir,
                                                      std::string_view name_and_tag);

// Applies one layer tarball onto `rootfs`; whiteouts (`.wh.NAME`, `.wh..wh..opq`)
// delete from the layers below when `apply_whiteouts`. `what` names the layer in
// error messages.
std::expected<void, ImageError> apply_layer(const std::filesystem::path& tarball,
                                            const std::filesystem::path& rootfs,
                                            bool apply_whiteouts, std::string_view what);

// Reads Env, WorkingDir and User from an image config JSON document (the
// `config` object of the OCI / Docker image config).
std::expected<ImageConfig, ImageError> parse_image_config(std::string_view json_text,
                                                          std::string_view what);

}  // namespace sandci::sandbox
