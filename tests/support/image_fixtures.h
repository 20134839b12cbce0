#pragma once
// Test helpers that write image archives by hand (so tests need no registry and no
// Docker): tar layers with any member names (also hostile ones), `docker save`
// archives and OCI image layouts with real sha256 digests.
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/temp_dir.h"

namespace sandci::testing {

namespace fs = std::filesystem;

inline void write_text(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The output of a shell command (test setup only, never with untrusted input).
inline std::string command_output(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

inline std::string sha256_of(const fs::path& file) {
  std::string out = command_output("sha256sum '" + file.string() + "'");
  return out.substr(0, 64);
}

// A tar archive written member by member; names are written exactly as given.
class TarBuilder {
 public:
  TarBuilder& file(const std::string& name, const std::string& content, int mode = 0644) {
    members_.push_back({AE_IFREG, name, content, mode});
    return *this;
  }
  TarBuilder& dir(const std::string& name, int mode = 0755) {
    members_.push_back({AE_IFDIR, name, "", mode});
    return *this;
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    members_.push_back({AE_IFLNK, name, target, 0777});
    return *this;
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    members_.push_back({0, name, target, 0644});
    return *this;
  }
  // Copies a file from the host (e.g. /bin/busybox) into the archive.
  TarBuilder& host_file(const std::string& name, const fs::path& source, int mode = 0755) {
    return file(name, read_text(source), mode);
  }

  void write(const fs::path& path, bool gzip = false) const {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK)
      throw std::runtime_error("cannot write " + path.string());
    for (const auto& m : members_) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, m.name.c_str());
      archive_entry_set_mtime(e, 1700000000, 0);
      archive_entry_set_uid(e, 0);
      archive_entry_set_gid(e, 0);
      if (m.type == 0) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, m.mode);
        archive_entry_set_hardlink(e, m.data.c_str());
        archive_entry_set_size(e, 0);
      } else {
        archive_entry_set_filetype(e, m.type);
        archive_entry_set_perm(e, m.mode);
        if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.data.c_str());
        archive_entry_set_size(e, m.type == AE_IFREG ? static_cast<la_int64_t>(m.data.size()) : 0);
      }
      archive_write_header(a, e);
      if (m.type == AE_IFREG && !m.data.empty()) archive_write_data(a, m.data.data(), m.data.size());
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
  }

 private:
  struct Member {
    int type;  // AE_IF*, 0 for a hard link
    std::string name;
    std::string data;  // content, or link target
    int mode;
  };
  std::vector<Member> members_;
};

// An image config document with the three fields sandci honours.
inline std::string image_config_json(const std::vector<std::string>& env, const std::string& working_dir,
                                     const std::string& user) {
  nlohmann::json c = {{"architecture", "amd64"},
                      {"os", "linux"},
                      {"config", {{"Env", env}, {"WorkingDir", working_dir}, {"User", user}}},
                      {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
  return c.dump();
}

// The config with rootfs.diff_ids filled in, as tools that check them (skopeo) expect.
inline std::string with_diff_ids(const std::string& config, const std::vector<std::string>& diff_ids) {
  nlohmann::json c = nlohmann::json::parse(config);
  c["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  return c.dump();
}

// A `docker save` archive (legacy layout: <id>/layer.tar + manifest.json) at `out`.
inline void make_docker_save(const fs::path& out, const std::vector<TarBuilder>& layers, const std::string& config,
                             const std::string& repo_tag, const fs::path& scratch) {
  fs::path dir = scratch / "docker-save";
  fs::create_directories(dir);
  TarBuilder archive;
  nlohmann::json layer_names = nlohmann::json::array();
  std::vector<std::string> diff_ids;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    fs::path layer = scratch / ("layer" + std::to_string(i) + ".tar");
    layers[i].write(layer);
    std::string id = sha256_of(layer);
    diff_ids.push_back("sha256:" + id);
    archive.dir(id).file(id + "/layer.tar", read_text(layer)).file(id + "/VERSION", "1.0");
    layer_names.push_back(id + "/layer.tar");
  }
  write_text(scratch / "config.json", with_diff_ids(config, diff_ids));
  std::string config_name = sha256_of(scratch / "config.json") + ".json";
  archive.file(config_name, read_text(scratch / "config.json"));
  nlohmann::json manifest = nlohmann::json::array(
      {{{"Config", config_name}, {"RepoTags", {repo_tag}}, {"Layers", layer_names}}});
  archive.file("manifest.json", manifest.dump());
  archive.write(out);
}

// An OCI image layout folder at `dir` holding one image tagged `ref_name`.
inline void make_oci_layout(const fs::path& dir, const std::vector<TarBuilder>& layers, const std::string& config,
                            const std::string& ref_name, bool gzip_layers) {
  fs::path blobs = dir / "blobs" / "sha256";
  fs::create_directories(blobs);
  auto add_blob = [&](const fs::path& file) {
    std::string digest = sha256_of(file);
    fs::rename(file, blobs / digest);
    return std::make_pair(digest, static_cast<std::uint64_t>(fs::file_size(blobs / digest)));
  };
  nlohmann::json layer_descs = nlohmann::json::array();
  std::vector<std::string> diff_ids;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    fs::path tmp = dir / ("layer" + std::to_string(i));
    layers[i].write(tmp);
    diff_ids.push_back("sha256:" + sha256_of(tmp));  // of the uncompressed tar
    if (gzip_layers) layers[i].write(tmp, true);
    auto [digest, size] = add_blob(tmp);
    layer_descs.push_back({{"mediaType", gzip_layers ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                                     : "application/vnd.oci.image.layer.v1.tar"},
                           {"digest", "sha256:" + digest},
                           {"size", size}});
  }
  write_text(dir / "config.tmp", with_diff_ids(config, diff_ids));
  auto [config_digest, config_size] = add_blob(dir / "config.tmp");
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config",
       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
        {"digest", "sha256:" + config_digest},
        {"size", config_size}}},
      {"layers", layer_descs}};
  write_text(dir / "manifest.tmp", manifest.dump());
  auto [manifest_digest, manifest_size] = add_blob(dir / "manifest.tmp");
  nlohmann::json index = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", "sha256:" + manifest_digest},
         {"size", manifest_size},
         {"annotations", {{"org.opencontainers.image.ref.name", ref_name}}}}}}};
  write_text(dir / "index.json", index.dump());
  write_text(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
}

// A tarball of a whole folder (an OCI layout archive, say).
inline void tar_folder(const fs::path& dir, const fs::path& out) {
  std::string cmd = "tar -C '" + dir.string() + "' -cf '" + out.string() + "' .";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

}  // namespace sandci::testing
