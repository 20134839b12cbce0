#include "sandbox/image_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <utility>

#include "sandbox/image_presets.h"
#include "sandbox/image_tools.h"

namespace sandci::sandbox {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::unexpected<ImageError> invalid(std::string message) {
  return std::unexpected(ImageError{ImageErrorKind::kInvalid, std::move(message)});
}
std::unexpected<ImageError> failed(std::string message) {
  return std::unexpected(ImageError{ImageErrorKind::kFailed, std::move(message)});
}

// Removes a scratch folder when the operation using it ends, however it ends.
class TempDir {
 public:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) remove_tree(path_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// An exclusive flock on a file beside the images; released by the destructor.
class FileLock {
 public:
  static std::expected<FileLock, ImageError> acquire(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return failed("cannot open lock file " + path.string() + ": " + std::strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd);
        return failed("cannot lock " + path.string() + ": " + std::strerror(err));
      }
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// Folder names keep [A-Za-z0-9._-] and percent-encode the rest ('/' and ':').
std::string escape_name(const std::string& name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string now_rfc3339() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

// Bytes of the regular files and symbolic links, each hard-linked file once.
std::uint64_t tree_size(const fs::path& root) {
  std::uint64_t total = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) continue;
    if (st.st_nlink > 1 && !seen.insert({st.st_dev, st.st_ino}).second) continue;
    total += static_cast<std::uint64_t>(st.st_size);
  }
  return total;
}

std::expected<ImageInfo, ImageError> read_image(const fs::path& dir) {
  std::ifstream in(dir / "config.json");
  if (!in) return std::unexpected(ImageError{ImageErrorKind::kNotFound, "no config.json in " + dir.string()});
  std::ostringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("name"))
    return failed("the image store is damaged: " + (dir / "config.json").string() + " is not an image config");
  ImageInfo info;
  info.name = doc.value("name", "");
  info.rootfs = dir / "rootfs";
  info.created = doc.value("created", "");
  info.size_bytes = doc.value("size_bytes", std::uint64_t{0});
  info.source = doc.value("source", "");
  auto config = parse_image_config(text.str(), "image store");
  if (!config) return std::unexpected(config.error());
  info.config = *config;
  return info;
}

bool write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.flush();
  return static_cast<bool>(out);
}

std::string tag_part(const std::string& normalized) { return normalized.substr(normalized.rfind(':') + 1); }


// A file of the image read without following symbolic links anywhere on the way
// (an image's /etc/passwd may point at the host's files). Empty when absent.
std::string read_image_file(const fs::path& rootfs, const std::vector<std::string>& parts) {
  int dir = ::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (std::size_t i = 0; dir >= 0 && i + 1 < parts.size(); ++i) {
    int next = ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(dir);
    dir = next;
  }
  if (dir < 0) return {};
  int fd = ::openat(dir, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  ::close(dir);
  if (fd < 0) return {};
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 22)) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

bool parse_id(std::string_view s, std::uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFEull) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// Fields of the colon-separated line whose field `key_field` equals `key`.
std::vector<std::string> find_entry(const std::string& text, std::size_t key_field, std::string_view key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::size_t pos = 0;
    for (;;) {
      auto colon = line.find(':', pos);
      fields.push_back(line.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
      if (colon == std::string::npos) break;
      pos = colon + 1;
    }
    if (fields.size() > key_field && fields[key_field] == key) return fields;
  }
  return {};
}

}  // namespace

std::expected<UserIds, ImageError> resolve_image_user(const fs::path& rootfs, std::string_view user) {
  UserIds ids;
  if (user.empty()) return ids;
  auto colon = user.find(':');
  std::string_view user_part = user.substr(0, colon);
  std::optional<std::string_view> group_part;
  if (colon != std::string_view::npos) group_part = user.substr(colon + 1);
  const std::string passwd = read_image_file(rootfs, {"etc", "passwd"});
  bool have_gid = false;
  if (parse_id(user_part, ids.uid)) {
    auto entry = find_entry(passwd, 2, user_part);
    have_gid = entry.size() > 3 && parse_id(entry[3], ids.gid);
  } else {
    auto entry = find_entry(passwd, 0, user_part);
    if (entry.size() < 4 || !parse_id(entry[2], ids.uid) || !parse_id(entry[3], ids.gid))
      return invalid("the image's user '" + std::string(user_part) + "' is not in its /etc/passwd");
    have_gid = true;
  }
  if (group_part) {
    if (!parse_id(*group_part, ids.gid)) {
      auto entry = find_entry(read_image_file(rootfs, {"etc", "group"}), 0, *group_part);
      if (entry.size() < 3 || !parse_id(entry[2], ids.gid))
        return invalid("the image's group '" + std::string(*group_part) + "' is not in its /etc/group");
    }
  } else if (!have_gid) {
    ids.gid = 0;
  }
  return ids;
}

bool has_skopeo_transport(std::string_view ref) {
  static constexpr std::array<std::string_view, 9> kTransports = {
      "docker://", "oci:", "oci-archive:", "docker-archive:", "dir:", "docker-daemon:",
      "containers-storage:", "sif:", "tarball:"};
  for (auto t : kTransports) {
    if (ref.starts_with(t)) return true;
  }
  return false;
}

std::expected<std::string, ImageError> normalize_image_name(std::string_view raw) {
  static const std::regex kName(
      "(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*");
  static const std::regex kTag("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  std::string s(raw);
  std::string name = s, tag = "latest";
  auto slash = s.rfind('/');
  auto colon = s.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    name = s.substr(0, colon);
    tag = s.substr(colon + 1);
  }
  if (s.size() > 255 || !std::regex_match(name, kName) || !std::regex_match(tag, kTag))
    return invalid("invalid image name '" + s +
                   "': use NAME[:TAG] with lowercase letters, digits, '.', '_', '-' and '/' (e.g. debian:12)");
  return name + ":" + tag;
}

fs::path default_state_dir() {
  const char* env = std::getenv("SANDCI_STATE_DIR");
  if (env != nullptr && *env != '\0') return env;
  return "/var/lib/sandci";
}

std::expected<std::string, ImageError> parse_debian_mirror(std::string_view text) {
  // deb822 stanzas are separated by blank lines; one-line "deb URI suite" also works.
  std::istringstream in{std::string(text)};
  std::string line, uri, suites;
  auto finish_stanza = [&]() -> std::string {
    std::string found;
    if (!uri.empty() && uri.find("security") == std::string::npos &&
        suites.find("security") == std::string::npos)
      found = uri;
    uri.clear();
    suites.clear();
    return found;
  };
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) {
      if (auto u = finish_stanza(); !u.empty()) return u;
      continue;
    }
    if (line[first] == '#') continue;
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "URIs:") {
      words >> uri;
    } else if (key == "Suites:") {
      std::getline(words, suites);
    } else if (key == "deb") {
      std::string word;
      while (words >> word && word.starts_with('[')) {
        while (!word.ends_with(']') && words >> word) {
        }
      }
      std::string suite;
      words >> suite;
      if (!word.empty() && word.find("security") == std::string::npos && suite.find("security") == std::string::npos)
        return word;
    }
  }
  if (auto u = finish_stanza(); !u.empty()) return u;
  return failed("no Debian mirror (a non-security URIs: line) in the apt sources");
}

ImageStore::ImageStore(fs::path state_dir) : state_dir_(std::move(state_dir)) {}

fs::path ImageStore::image_dir(const std::string& normalized) const {
  return images_dir() / escape_name(normalized);
}

std::expected<fs::path, ImageError> ImageStore::make_temp_dir() const {
  std::error_code ec;
  fs::create_directories(images_dir(), ec);
  if (ec) return failed("cannot create the image store " + images_dir().string() + ": " + ec.message());
  // Scratch folders of writers that died (killed during a debootstrap, say) go after a day.
  auto day_ago = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& entry : fs::directory_iterator(images_dir(), ec)) {
    if (entry.path().filename().string().starts_with(".tmp-") && entry.last_write_time(ec) < day_ago && !ec)
      remove_tree(entry.path());
  }
  // Hidden names are never images: list() and lookup() cannot see a half-built one.
  std::string templ = (images_dir() / ".tmp-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr)
    return failed("cannot create a temporary folder in " + images_dir().string() + ": " + std::strerror(errno));
  return fs::path(templ);
}

std::expected<ImageInfo, ImageError> ImageStore::commit(const fs::path& temp, const std::string& name,
                                                        const ImageConfig& config, const std::string& source) {
  ImageInfo info;
  info.name = name;
  info.config = config;
  info.created = now_rfc3339();
  info.size_bytes = tree_size(temp / "rootfs");
  info.source = source;
  json doc = {{"name", info.name},
              {"created", info.created},
              {"size_bytes", info.size_bytes},
              {"source", info.source},
              {"config", {{"Env", config.env}, {"WorkingDir", config.working_dir}, {"User", config.user}}}};
  std::error_code ec;
  // Only what a job needs stays: scratch copies of archives and layouts go.
  for (const auto& entry : fs::directory_iterator(temp, ec)) {
    if (entry.path().filename() != "rootfs") remove_tree(entry.path());
  }
  if (!write_file(temp / "config.json", doc.dump(2) + "\n"))
    return failed("cannot write " + (temp / "config.json").string());
  // mkdtemp made it 0700; a job runner that is not root still has to read it.
  fs::permissions(temp, fs::perms(0755), ec);
  fs::path dest = image_dir(name);
  if (::rename(temp.c_str(), dest.c_str()) != 0) {
    if (errno != EEXIST && errno != ENOTEMPTY)
      return failed("cannot move the image into " + dest.string() + ": " + std::strerror(errno));
    // Replace atomically: swap the two folders, then delete the old one (now at temp).
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) != 0)
      return failed("cannot replace " + dest.string() + ": " + std::strerror(errno));
  }
  info.rootfs = dest / "rootfs";
  return info;
}

std::expected<ImageInfo, ImageError> ImageStore::lookup(std::string_view raw) const {
  auto name = normalize_image_name(raw);
  if (!name) return std::unexpected(name.error());
  auto info = read_image(image_dir(*name));
  if (!info && info.error().kind == ImageErrorKind::kNotFound) {
    return std::unexpected(ImageError{
        ImageErrorKind::kNotFound,
        "image '" + *name + "' is not in the image store (" + images_dir().string() +
            "); build the default one with `sandci image build-default`, or add one with "
            "`sandci image import NAME TARBALL` or `sandci image pull REF`"});
  }
  return info;
}

std::expected<std::vector<ImageInfo>, ImageError> ImageStore::list() const {
  std::vector<ImageInfo> images;
  std::error_code ec;
  if (!fs::exists(images_dir(), ec)) return images;
  for (const auto& entry : fs::directory_iterator(images_dir(), ec)) {
    if (entry.path().filename().string().starts_with('.')) continue;
    auto info = read_image(entry.path());
    if (info) {
      images.push_back(std::move(*info));
    } else if (info.error().kind != ImageErrorKind::kNotFound) {
      return std::unexpected(info.error());
    }
  }
  if (ec) return failed("cannot list " + images_dir().string() + ": " + ec.message());
  std::sort(images.begin(), images.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return images;
}

std::expected<void, ImageError> ImageStore::remove(std::string_view raw) {
  auto info = lookup(raw);
  if (!info) return std::unexpected(info.error());
  auto temp = make_temp_dir();
  if (!temp) return std::unexpected(temp.error());
  TempDir trash(*temp);
  auto lock = FileLock::acquire(images_dir() / (".lock-" + escape_name(info->name)));
  if (!lock) return std::unexpected(lock.error());
  // One rename makes the image disappear for readers; deleting the files comes after.
  fs::path dir = image_dir(info->name);
  if (::rename(dir.c_str(), (trash.path() / "old").c_str()) != 0) {
    if (errno == ENOENT)  // removed by someone else meanwhile
      return std::unexpected(ImageError{ImageErrorKind::kNotFound, "image '" + info->name + "' is already gone"});
    return failed("cannot remove " + dir.string() + ": " + std::strerror(errno));
  }
  return {};
}

std::expected<ImageInfo, ImageError> ImageStore::import(std::string_view raw, const fs::path& source) {
  auto name = normalize_image_name(raw);
  if (!name) return std::unexpected(name.error());
  std::error_code ec;
  if (!fs::exists(source, ec)) return invalid("cannot import '" + *name + "': " + source.string() + " does not exist");
  auto temp = make_temp_dir();
  if (!temp) return std::unexpected(temp.error());
  TempDir scratch(*temp);
  fs::create_directory(scratch.path() / "rootfs", ec);
  if (ec) return failed("cannot create " + (scratch.path() / "rootfs").string() + ": " + ec.message());
  auto unpacked = unpack_image(source, scratch.path() / "rootfs", scratch.path(), *name);
  if (!unpacked) {
    auto e = unpacked.error();
    e.message = "cannot import " + source.string() + " as '" + *name + "': " + e.message;
    return std::unexpected(e);
  }
  auto lock = FileLock::acquire(images_dir() / (".lock-" + escape_name(*name)));
  if (!lock) return std::unexpected(lock.error());
  return commit(scratch.path(), *name, unpacked->config,
                "import of " + fs::absolute(source).string() + " (" + unpacked->format + ")");
}

// Installs `tools` into a fresh debootstrap root with the root's own apt-get
// (chroot): services are kept from starting, recommends are left out.
static std::expected<void, std::string> install_tools(const fs::path& rootfs, std::span<const std::string_view> tools) {
  const fs::path no_services = rootfs / "usr/sbin/policy-rc.d";
  if (!write_file(no_services, "#!/bin/sh\nexit 101\n")) return std::unexpected("cannot write " + no_services.string());
  std::error_code ec;
  fs::permissions(no_services, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::replace, ec);
  const std::vector<std::string> update = {"env", "DEBIAN_FRONTEND=noninteractive", "chroot", rootfs.string(),
                                           "apt-get", "update", "-q"};
  auto updated = run_tool(update, 64 * 1024);
  if (!updated) return std::unexpected(updated.error());
  if (updated->exit_code != 0)
    return std::unexpected("apt-get update in the new root failed:\n" + tail_lines(updated->output, 15));
  std::vector<std::string> install = {"env", "DEBIAN_FRONTEND=noninteractive", "chroot", rootfs.string(),
                                      "apt-get", "install", "-y", "-q", "--no-install-recommends"};
  for (std::string_view tool : tools) install.emplace_back(tool);
  auto ran = run_tool(install, 256 * 1024);
  if (!ran) return std::unexpected(ran.error());
  if (ran->exit_code != 0)
    return std::unexpected("apt-get install in the new root exited with " + std::to_string(ran->exit_code) + ":\n" +
                           tail_lines(ran->output, 15));
  (void)run_tool({"chroot", rootfs.string(), "apt-get", "clean"});
  fs::remove(no_services, ec);
  return {};
}

std::expected<BuildDefaultResult, ImageError> ImageStore::build_default(const BuildDefaultOptions& options) {
  auto normalized = normalize_image_name(options.name);
  if (!normalized) return std::unexpected(normalized.error());
  const std::string name = *normalized;
  const ImagePreset* preset = find_image_preset(options.preset);
  if (!preset) {
    std::string known;
    for (const auto& p : image_presets()) known += (known.empty() ? "" : ", ") + std::string(p.name);
    return invalid("no image preset '" + options.preset + "' (presets: " + known + ")");
  }
  std::string packages;
  for (std::string_view package : preset->base) packages += (packages.empty() ? "" : ",") + std::string(package);
  for (const auto& extra : options.extra_packages) {
    // Debian package names only: the list goes to debootstrap's --include.
    if (extra.empty() || extra.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") != std::string::npos)
      return std::unexpected(ImageError{ImageErrorKind::kInvalid, "not a Debian package name: '" + extra + "'"});
    packages += "," + extra;
  }
  std::error_code ec;
  fs::create_directories(images_dir(), ec);
  if (ec) return failed("cannot create the image store " + images_dir().string() + ": " + ec.message());
  // Held for the whole build, so two concurrent callers run one debootstrap.
  auto lock = FileLock::acquire(images_dir() / (".lock-" + escape_name(name)));
  if (!lock) return std::unexpected(lock.error());
  if (!options.force) {
    if (auto existing = lookup(name)) return BuildDefaultResult{*existing, false};
  }
  std::string mirror = options.mirror;
  if (mirror.empty()) {
    std::ifstream in(options.sources_file);
    if (!in) return failed("cannot read " + options.sources_file + " to find a Debian mirror");
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = parse_debian_mirror(text.str());
    if (!parsed) return std::unexpected(parsed.error());
    mirror = *parsed;
  }
  auto temp = make_temp_dir();
  if (!temp) return std::unexpected(temp.error());
  TempDir scratch(*temp);
  fs::path rootfs = scratch.path() / "rootfs";
  auto run = run_tool({"debootstrap", "--variant=minbase", "--include=" + packages, "bookworm", rootfs.string(), mirror},
                      256 * 1024);
  if (!run) return failed("cannot build " + name + ": " + run.error() + " (install the debootstrap package)");
  if (run->exit_code != 0)
    return failed("cannot build " + name + ": debootstrap exited with " + std::to_string(run->exit_code) + ":\n" +
                  tail_lines(run->output, 15));
  if (!preset->tools.empty()) {
    if (auto installed = install_tools(rootfs, preset->tools); !installed)
      return failed("cannot build " + name + ": " + installed.error());
  }
  // Downloaded packages and package lists are of no use to jobs (a job that installs
  // packages runs apt-get update first, as in Docker's Debian images); the host's
  // name is not the image's.
  for (const auto& entry : fs::directory_iterator(rootfs / "var/cache/apt/archives", ec)) {
    if (entry.path().extension() == ".deb") fs::remove(entry.path(), ec);
  }
  for (const auto& entry : fs::directory_iterator(rootfs / "var/lib/apt/lists", ec)) {
    if (entry.is_regular_file() && entry.path().filename() != "lock") fs::remove(entry.path(), ec);
  }
  if (!write_file(rootfs / "etc/hostname", "sandci\n")) return failed("cannot write " + (rootfs / "etc/hostname").string());
  // The image's own name resolves without a network (sudo looks it up on every call).
  if (!write_file(rootfs / "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tsandci\n::1\tlocalhost ip6-localhost ip6-loopback\n"))
    return failed("cannot write " + (rootfs / "etc/hosts").string());
  if (!preset->sudoers.empty()) {
    const fs::path sudoers = rootfs / "etc/sudoers.d/sandci";
    if (!write_file(sudoers, std::string(preset->sudoers))) return failed("cannot write " + sudoers.string());
    fs::permissions(sudoers, fs::perms::owner_read | fs::perms::group_read, fs::perm_options::replace, ec);
  }
  if (!preset->pip_conf.empty() && !write_file(rootfs / "etc/pip.conf", std::string(preset->pip_conf)))
    return failed("cannot write " + (rootfs / "etc/pip.conf").string());
  ImageConfig config;
  config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
  for (std::string_view line : preset->env) config.env.emplace_back(line);
  auto info = commit(scratch.path(), name, config,
                     "debootstrap --variant=minbase --include=" + packages + " bookworm " + mirror +
                         (preset->tools.empty() ? "" : ", then apt-get install of the " + options.preset + " preset's tools"));
  if (!info) return std::unexpected(info.error());
  return BuildDefaultResult{*info, true};
}

std::expected<ImageInfo, ImageError> ImageStore::pull(std::string_view ref_in, std::string_view raw) {
  auto name = normalize_image_name(raw);
  if (!name) return std::unexpected(name.error());
  std::string ref(ref_in);
  if (ref.empty()) return invalid("no image reference to pull");
  if (!has_skopeo_transport(ref)) ref = "docker://" + ref;
  auto temp = make_temp_dir();
  if (!temp) return std::unexpected(temp.error());
  TempDir scratch(*temp);
  fs::path layout = scratch.path() / "layout";
  std::vector<std::string> argv = {"skopeo"};
  std::error_code ec;
  if (!fs::exists("/etc/containers/policy.json", ec)) {
    // skopeo refuses to run without a trust policy; an image store copy trusts its source.
    fs::path policy = scratch.path() / "policy.json";
    if (!write_file(policy, R"({"default":[{"type":"insecureAcceptAnything"}]})"))
      return failed("cannot write " + policy.string());
    argv.insert(argv.end(), {"--policy", policy.string()});
  }
  argv.insert(argv.end(), {"copy", "--quiet", ref, "oci:" + layout.string() + ":" + tag_part(*name)});
  auto run = run_tool(argv);
  if (!run) return failed("cannot pull " + ref + ": " + run.error() + " (install the skopeo package)");
  if (run->exit_code != 0)
    return failed("cannot pull " + ref + ": skopeo copy exited with " + std::to_string(run->exit_code) + ":\n" +
                  tail_lines(run->output, 10));
  fs::create_directory(scratch.path() / "rootfs", ec);
  if (ec) return failed("cannot create " + (scratch.path() / "rootfs").string() + ": " + ec.message());
  auto unpacked = unpack_image(layout, scratch.path() / "rootfs", scratch.path(), *name);
  if (!unpacked) {
    auto e = unpacked.error();
    e.message = "cannot import " + ref + " as '" + *name + "': " + e.message;
    return std::unexpected(e);
  }
  auto lock = FileLock::acquire(images_dir() / (".lock-" + escape_name(*name)));
  if (!lock) return std::unexpected(lock.error());
  return commit(scratch.path(), *name, unpacked->config, "pull of " + ref);
}

}  // namespace sandci::sandbox
