#include "sandbox/image_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

namespace sandci::sandbox {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::unexpected<ImageError> invalid(std::string message) {
  return std::unexpected(ImageError{ImageErrorKind::kInvalid, std::move(message)});
}
std::unexpected<ImageError> failed(std::string message) {
  return std::unexpected(ImageError{ImageErrorKind::kFailed, std::move(message)});
}

struct ReadArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ReadArchive = std::unique_ptr<archive, ReadArchiveDeleter>;
using WriteArchive = std::unique_ptr<archive, WriteArchiveDeleter>;

std::expected<ReadArchive, ImageError> open_tar(const fs::path& path, std::string_view what) {
  ReadArchive a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    if (!fs::exists(path)) return invalid(std::string(what) + ": " + path.string() + " does not exist");
    return invalid(std::string(what) + ": cannot read " + path.string() + " as a tar archive (plain or compressed): " +
                   archive_error_string(a.get()));
  }
  return a;
}

// A member name made relative and normalised ("" is the root itself), or why it is refused.
std::expected<std::string, std::string> clean_member_name(std::string_view raw) {
  if (raw.starts_with('/')) return std::unexpected("is an absolute path");
  std::string out;
  std::size_t pos = 0;
  while (pos <= raw.size()) {
    std::size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    if (part == "..") return std::unexpected("contains a '..' component");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    pos = slash + 1;
  }
  return out;
}

std::string parent_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? std::string() : rel.substr(0, slash);
}
std::string base_of(const std::string& rel) {
  auto slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

// The first existing component of `rel` (inside rootfs) that is a symbolic link or
// not a directory, looking at every component when `include_last`, otherwise at the
// parents only. Empty when the path is safe to write through.
std::string blocking_component(const fs::path& rootfs, const std::string& rel, bool include_last) {
  std::string so_far;
  std::size_t pos = 0;
  while (pos < rel.size()) {
    std::size_t slash = rel.find('/', pos);
    bool last = slash == std::string::npos;
    if (last) slash = rel.size();
    if (last && !include_last) break;
    so_far = rel.substr(0, slash);
    struct stat st;
    if (lstat((rootfs / so_far).c_str(), &st) != 0) return {};  // the rest will be created
    if (!S_ISDIR(st.st_mode)) return so_far;
    pos = slash + 1;
  }
  return {};
}

std::unexpected<ImageError> refused(std::string_view what, std::string_view raw, std::string_view reason) {
  return invalid("refusing " + std::string(what) + ": member '" + std::string(raw) + "' " + std::string(reason));
}

struct Whiteouts {
  std::vector<std::string> opaque_dirs;
  std::vector<std::string> removed;  // paths deleted from the layers below
};

// Pass 1: every name is checked before anything is written; whiteouts are collected.
std::expected<Whiteouts, ImageError> scan_layer(const fs::path& tarball, bool apply_whiteouts,
                                                std::string_view what) {
  auto a = open_tar(tarball, what);
  if (!a) return std::unexpected(a.error());
  Whiteouts w;
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a->get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) return invalid(std::string(what) + ": a member has no name");
    auto name = clean_member_name(raw);
    if (!name) return refused(what, raw, name.error());
    if (const char* link = archive_entry_hardlink(entry)) {
      auto target = clean_member_name(link);
      if (!target) return refused(what, raw, "is a hard link whose target '" + std::string(link) + "' " +
                                                 target.error() + " (outside the image)");
      if (target->empty()) return refused(what, raw, "is a hard link to the root folder");
    }
    if (apply_whiteouts) {
      std::string base = base_of(*name);
      if (base == kOpaqueMarker) {
        w.opaque_dirs.push_back(parent_of(*name));
      } else if (base.starts_with(kWhiteoutPrefix)) {
        std::string gone = base.substr(kWhiteoutPrefix.size());
        if (gone.empty() || gone == "." || gone == "..") return refused(what, raw, "is a malformed whiteout");
        std::string parent = parent_of(*name);
        w.removed.push_back(parent.empty() ? gone : parent + "/" + gone);
      }
    }
    archive_read_data_skip(a->get());
  }
  if (r != ARCHIVE_EOF)
    return invalid(std::string(what) + ": " + tarball.string() + " is not a valid tar archive: " +
                   archive_error_string(a->get()));
  return w;
}

std::expected<void, ImageError> remove_path(const fs::path& path, std::string_view what) {
  std::error_code ec;
  fs::remove_all(path, ec);  // never follows symbolic links
  if (ec) return failed(std::string(what) + ": cannot remove " + path.string() + ": " + ec.message());
  return {};
}

std::expected<void, ImageError> apply_whiteouts(const fs::path& rootfs, const Whiteouts& w,
                                                std::string_view what) {
  for (const auto& dir : w.opaque_dirs) {
    if (auto bad = blocking_component(rootfs, dir, true); !bad.empty())
      return invalid("refusing " + std::string(what) + ": opaque whiteout in '" + dir + "' goes through '" + bad +
                     "', which is not a folder");
    std::error_code ec;
    fs::path target = dir.empty() ? rootfs : rootfs / dir;
    if (!fs::is_directory(fs::symlink_status(target, ec))) continue;
    for (const auto& child : fs::directory_iterator(target, ec)) {
      if (auto r = remove_path(child.path(), what); !r) return r;
    }
    if (ec) return failed(std::string(what) + ": cannot list " + target.string() + ": " + ec.message());
  }
  for (const auto& rel : w.removed) {
    if (auto bad = blocking_component(rootfs, rel, false); !bad.empty())
      return invalid("refusing " + std::string(what) + ": whiteout of '" + rel + "' goes through '" + bad +
                     "', which is not a folder");
    if (auto r = remove_path(rootfs / rel, what); !r) return r;
  }
  return {};
}

// Makes room for a new member: a file replaces whatever was there (unlinked, so a
// hard-linked copy elsewhere keeps its content); a folder replaces a non-folder.
std::expected<void, ImageError> clear_target(const fs::path& target, bool is_dir, std::string_view what) {
  struct stat st;
  if (lstat(target.c_str(), &st) != 0) return {};
  if (is_dir && S_ISDIR(st.st_mode)) return {};
  return remove_path(target, what);
}

std::expected<void, ImageError> copy_data(archive* in, archive* out, std::string_view what,
                                          const std::string& name) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  int r;
  while ((r = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN)
      return failed(std::string(what) + ": cannot write '" + name + "': " + archive_error_string(out));
  }
  if (r != ARCHIVE_EOF)
    return invalid(std::string(what) + ": cannot read '" + name + "': " + archive_error_string(in));
  return {};
}

// Pass 2: extraction. The checks of pass 1 are repeated per member (cheap) so that
// nothing here trusts the archive; libarchive's own guards stay on as a second line.
std::expected<void, ImageError> extract_layer(const fs::path& tarball, const fs::path& rootfs,
                                              bool apply_whiteouts, std::string_view what) {
  auto a = open_tar(tarball, what);
  if (!a) return std::unexpected(a.error());
  WriteArchive w(archive_write_disk_new());
  // Numeric owners from the archive (no name lookup on this host); no FFLAGS.
  archive_write_disk_set_options(w.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                              ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a->get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    std::string raw = archive_entry_pathname(entry);
    auto name = clean_member_name(raw);
    if (!name) return refused(what, raw, name.error());
    if (apply_whiteouts && base_of(*name).starts_with(kWhiteoutPrefix)) continue;
    if (auto bad = blocking_component(rootfs, *name, false); !bad.empty())
      return refused(what, raw, "would be written through '" + bad + "', which is a symbolic link or not a folder");
    fs::path target = name->empty() ? rootfs : rootfs / *name;
    bool is_dir = archive_entry_filetype(entry) == AE_IFDIR;
    if (!is_dir && name->empty()) return refused(what, raw, "replaces the root folder with a non-folder");
    if (auto c = clear_target(target, is_dir, what); !c) return c;
    archive_entry_set_pathname(entry, target.c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      auto link_name = clean_member_name(link);
      if (!link_name || link_name->empty()) return refused(what, raw, "is a hard link outside the image");
      if (auto bad = blocking_component(rootfs, *link_name, false); !bad.empty())
        return refused(what, raw, "is a hard link through '" + bad + "', which is a symbolic link");
      archive_entry_set_hardlink(entry, (rootfs / *link_name).c_str());
    }
    if (archive_write_header(w.get(), entry) < ARCHIVE_WARN)
      return failed(std::string(what) + ": cannot create '" + *name + "': " + archive_error_string(w.get()));
    if (archive_entry_size(entry) > 0) {
      if (auto c = copy_data(a->get(), w.get(), what, *name); !c) return c;
    }
    if (archive_write_finish_entry(w.get()) < ARCHIVE_WARN)
      return failed(std::string(what) + ": cannot finish '" + *name + "': " + archive_error_string(w.get()));
  }
  if (r != ARCHIVE_EOF)
    return invalid(std::string(what) + ": " + tarball.string() + " is not a valid tar archive: " +
                   archive_error_string(a->get()));
  // Folder permissions and times are set last, here.
  if (archive_write_close(w.get()) < ARCHIVE_WARN)
    return failed(std::string(what) + ": " + archive_error_string(w.get()));
  return {};
}

// True when `base/rel` is a regular file reached through real folders only: an
// unpacked archive may hold symbolic links (`blobs -> /`) that point at host files.
bool is_plain_member(const fs::path& base, const std::string& rel) {
  return blocking_component(base, rel, false).empty() && fs::is_regular_file(fs::symlink_status(base / rel));
}

std::expected<std::string, ImageError> read_text(const fs::path& path, std::string_view what) {
  if (!fs::is_regular_file(fs::symlink_status(path)))
    return invalid(std::string(what) + ": " + path.filename().string() + " is missing or not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid(std::string(what) + ": cannot read " + path.filename().string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::expected<json, ImageError> read_json(const fs::path& path, std::string_view what) {
  auto text = read_text(path, what);
  if (!text) return std::unexpected(text.error());
  json doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded()) return invalid(std::string(what) + ": " + path.filename().string() + " is not valid JSON");
  return doc;
}

// A path named inside an archive's manifest, resolved inside `base`.
std::expected<fs::path, ImageError> member_path(const fs::path& base, const json& value, std::string_view what) {
  if (!value.is_string()) return invalid(std::string(what) + ": a path in the manifest is not a string");
  auto name = clean_member_name(value.get<std::string>());
  if (!name || name->empty())
    return invalid(std::string(what) + ": manifest path '" + value.get<std::string>() + "' is outside the archive");
  if (!is_plain_member(base, *name))
    return invalid(std::string(what) + ": manifest path '" + *name + "' is not a regular file in the archive");
  return base / *name;
}

std::string tag_of(std::string_view name_and_tag) {
  auto slash = name_and_tag.rfind('/');
  auto colon = name_and_tag.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) return "latest";
  return std::string(name_and_tag.substr(colon + 1));
}

std::expected<UnpackedImage, ImageError> unpack_docker_save(const fs::path& dir, const fs::path& rootfs,
                                                            std::string_view name_and_tag) {
  constexpr std::string_view what = "docker save archive";
  auto manifest = read_json(dir / "manifest.json", what);
  if (!manifest) return std::unexpected(manifest.error());
  if (!manifest->is_array() || manifest->empty())
    return invalid(std::string(what) + ": manifest.json lists no image");
  const json* chosen = manifest->size() == 1 ? &(*manifest)[0] : nullptr;
  std::string tags;
  for (const auto& image : *manifest) {
    if (!image.is_object()) return invalid(std::string(what) + ": manifest.json entries must be objects");
    for (const auto& tag : image.value("RepoTags", json::array())) {
      if (!tag.is_string()) continue;
      tags += (tags.empty() ? "" : ", ") + tag.get<std::string>();
      std::string t = tag.get<std::string>();
      if (chosen == nullptr && (t == name_and_tag || tag_of(t) == tag_of(name_and_tag))) chosen = &image;
    }
  }
  if (chosen == nullptr)
    return invalid(std::string(what) + " holds several images (" + tags + "); none matches '" +
                   std::string(name_and_tag) + "'");
  auto config_path = member_path(dir, chosen->value("Config", json()), what);
  if (!config_path) return std::unexpected(config_path.error());
  auto config_text = read_text(*config_path, what);
  if (!config_text) return std::unexpected(config_text.error());
  auto config = parse_image_config(*config_text, what);
  if (!config) return std::unexpected(config.error());
  const json layers = chosen->value("Layers", json::array());
  if (!layers.is_array()) return invalid(std::string(what) + ": Layers is not a list");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto layer = member_path(dir, layers[i], what);
    if (!layer) return std::unexpected(layer.error());
    std::string label = "layer " + std::to_string(i + 1) + " of " + std::to_string(layers.size()) + " (" +
                        layers[i].get<std::string>() + ")";
    if (auto r = apply_layer(*layer, rootfs, true, label); !r) return std::unexpected(r.error());
  }
  return UnpackedImage{*config, std::string(what)};
}

std::string host_oci_arch() {
  struct utsname u;
  if (uname(&u) != 0) return "amd64";
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

std::expected<fs::path, ImageError> blob_path(const fs::path& layout, const json& descriptor, std::string_view what) {
  static const std::regex kDigest("([a-z0-9]+):([a-f0-9]{32,128})");
  std::string digest = descriptor.is_object() ? descriptor.value("digest", "") : "";
  std::smatch m;
  if (!std::regex_match(digest, m, kDigest)) return invalid(std::string(what) + ": bad digest '" + digest + "'");
  std::string rel = "blobs/" + m[1].str() + "/" + m[2].str();
  if (!is_plain_member(layout, rel))
    return invalid(std::string(what) + ": blob " + digest + " is missing or not a regular file");
  return layout / rel;
}

bool is_index(const json& doc, const std::string& media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         (media_type.empty() && doc.contains("manifests"));
}

// Picks one manifest descriptor from an index: by ref name, then by platform.
std::expected<json, ImageError> pick_manifest(const json& index, std::string_view tag, std::string_view what) {
  const json manifests = index.value("manifests", json::array());
  if (!manifests.is_array() || manifests.empty()) return invalid(std::string(what) + ": the index lists no manifest");
  if (manifests.size() == 1) return manifests[0];
  std::string names;
  for (const auto& m : manifests) {
    std::string ref = m.value("annotations", json::object()).value("org.opencontainers.image.ref.name", "");
    if (!ref.empty()) names += (names.empty() ? "" : ", ") + ref;
    if (!ref.empty() && (ref == tag || tag_of(ref) == tag)) return m;
  }
  std::string arch = host_oci_arch();
  for (const auto& m : manifests) {
    const json platform = m.value("platform", json::object());
    if (platform.value("os", "") == "linux" && platform.value("architecture", "") == arch) return m;
  }
  return invalid(std::string(what) + " holds several images (" + (names.empty() ? "unnamed" : names) +
                 "); none matches tag '" + std::string(tag) + "' or platform linux/" + arch);
}

std::expected<UnpackedImage, ImageError> unpack_oci_layout(const fs::path& layout, const fs::path& rootfs,
                                                           std::string_view name_and_tag) {
  constexpr std::string_view what = "OCI layout";
  auto doc = read_json(layout / "index.json", what);
  if (!doc) return std::unexpected(doc.error());
  std::string tag = tag_of(name_and_tag);
  json manifest = *doc;
  std::string media_type = "application/vnd.oci.image.index.v1+json";
  // Indexes may nest (an index pointing at a multi-platform index); a few levels suffice.
  for (int depth = 0; is_index(manifest, media_type); ++depth) {
    if (depth == 4) return invalid(std::string(what) + ": indexes nest too deeply");
    auto descriptor = pick_manifest(manifest, tag, what);
    if (!descriptor) return std::unexpected(descriptor.error());
    auto path = blob_path(layout, *descriptor, what);
    if (!path) return std::unexpected(path.error());
    auto next = read_json(*path, what);
    if (!next) return std::unexpected(next.error());
    media_type = descriptor->value("mediaType", next->value("mediaType", ""));
    manifest = *next;
  }
  auto config_path = blob_path(layout, manifest.value("config", json::object()), what);
  if (!config_path) return std::unexpected(config_path.error());
  auto config_text = read_text(*config_path, what);
  if (!config_text) return std::unexpected(config_text.error());
  auto config = parse_image_config(*config_text, what);
  if (!config) return std::unexpected(config.error());
  const json layers = manifest.value("layers", json::array());
  if (!layers.is_array()) return invalid(std::string(what) + ": layers is not a list");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto layer = blob_path(layout, layers[i], what);
    if (!layer) return std::unexpected(layer.error());
    std::string label = "layer " + std::to_string(i + 1) + " of " + std::to_string(layers.size()) + " (" +
                        layers[i].value("digest", "") + ")";
    if (auto r = apply_layer(*layer, rootfs, true, label); !r) return std::unexpected(r.error());
  }
  return UnpackedImage{*config, std::string(what)};
}

enum class Kind { kRootfs, kDockerSave, kOci };

// Looks at the top-level member names only to tell the three tarball kinds apart.
std::expected<Kind, ImageError> detect_kind(const fs::path& tarball) {
  auto a = open_tar(tarball, "image archive");
  if (!a) return std::unexpected(a.error());
  bool manifest = false, index = false, layout = false;
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a->get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    auto name = clean_member_name(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
    if (name) {
      manifest |= *name == "manifest.json";
      index |= *name == "index.json";
      layout |= *name == "oci-layout";
    }
    archive_read_data_skip(a->get());
  }
  if (r != ARCHIVE_EOF)
    return invalid("image archive: " + tarball.string() + " is not a valid tar archive: " +
                   archive_error_string(a->get()));
  if (manifest) return Kind::kDockerSave;
  if (index && layout) return Kind::kOci;
  return Kind::kRootfs;
}

}  // namespace

std::expected<ImageConfig, ImageError> parse_image_config(std::string_view json_text, std::string_view what) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return invalid(std::string(what) + ": the image config is not a JSON object");
  ImageConfig config;
  const json c = doc.value("config", json::object());
  if (!c.is_object()) return config;  // "config": null is legal: nothing set
  if (c.contains("Env") && c["Env"].is_array()) {
    for (const auto& e : c["Env"]) {
      if (e.is_string() && e.get<std::string>().find('=') != std::string::npos) config.env.push_back(e);
    }
  }
  if (c.contains("WorkingDir") && c["WorkingDir"].is_string()) config.working_dir = c["WorkingDir"];
  if (c.contains("User") && c["User"].is_string()) config.user = c["User"];
  return config;
}

std::expected<void, ImageError> apply_layer(const fs::path& tarball, const fs::path& rootfs, bool apply_whiteouts_,
                                            std::string_view what) {
  auto w = scan_layer(tarball, apply_whiteouts_, what);
  if (!w) return std::unexpected(w.error());
  if (apply_whiteouts_) {
    if (auto r = apply_whiteouts(rootfs, *w, what); !r) return r;
  }
  return extract_layer(tarball, rootfs, apply_whiteouts_, what);
}

std::expected<UnpackedImage, ImageError> unpack_image(const fs::path& source, const fs::path& rootfs_in,
                                                      const fs::path& work_dir, std::string_view name_and_tag) {
  std::error_code ec;
  // libarchive checks every path component for symbolic links: give it a real path.
  fs::path rootfs = fs::canonical(rootfs_in, ec);
  if (ec) return failed("cannot resolve " + rootfs_in.string() + ": " + ec.message());
  auto status = fs::status(source, ec);
  if (ec || !fs::exists(status)) return invalid(source.string() + " does not exist");
  if (fs::is_directory(status)) {
    if (!fs::exists(source / "index.json"))
      return invalid(source.string() + " is a folder but not an OCI image layout (no index.json)");
    return unpack_oci_layout(source, rootfs, name_and_tag);
  }
  auto kind = detect_kind(source);
  if (!kind) return std::unexpected(kind.error());
  if (*kind == Kind::kRootfs) {
    if (auto r = apply_layer(source, rootfs, false, "rootfs tarball"); !r) return std::unexpected(r.error());
    return UnpackedImage{ImageConfig{}, "rootfs tarball"};
  }
  fs::path unpacked = fs::canonical(work_dir, ec) / "archive";
  if (ec || !fs::create_directory(unpacked, ec))
    return failed("cannot create " + unpacked.string() + ": " + ec.message());
  if (auto r = apply_layer(source, unpacked, false, "image archive"); !r) return std::unexpected(r.error());
  if (*kind == Kind::kDockerSave) return unpack_docker_save(unpacked, rootfs, name_and_tag);
  return unpack_oci_layout(unpacked, rootfs, name_and_tag);
}

}  // namespace sandci::sandbox
