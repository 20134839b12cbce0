#include "agent/runner/artifacts.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

namespace sandci::agent {

namespace fs = std::filesystem;

namespace {

// ---- small helpers -------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

std::string errno_text() { return std::strerror(errno); }

std::string join(const std::vector<std::string>& segs, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < segs.size(); ++i) {
    if (i) out += '/';
    out += segs[i];
  }
  return out;
}
std::string join(const std::vector<std::string>& segs) { return join(segs, segs.size()); }

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> segs;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view seg = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!seg.empty()) segs.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return segs;
}

bool has_glob(std::string_view seg) { return seg.find_first_of("*?[") != std::string_view::npos; }

std::string_view trim(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Normalises a relative path: drops "." and empty segments, resolves ".." against the
// segment before it. Refuses absolute paths, `~`, and ".." leaving the top, or ".."
// after a glob segment (which folder it would name depends on the match).
std::expected<std::vector<std::string>, std::string> normalise_relative(std::string_view path,
                                                                        std::string_view what) {
  auto quoted = "'" + std::string(path) + "'";
  if (path.starts_with('/')) {
    return std::unexpected(std::string(what) + " " + quoted +
                           " is absolute; paths are relative to the workspace");
  }
  if (path.starts_with('~')) {
    return std::unexpected(std::string(what) + " " + quoted +
                           " starts with '~'; paths are relative to the workspace");
  }
  if (path.find('\0') != std::string_view::npos) {
    return std::unexpected(std::string(what) + " holds a NUL byte");
  }
  std::vector<std::string> out;
  for (auto& seg : split(path)) {
    if (seg == ".") continue;
    if (seg == "..") {
      if (out.empty()) {
        return std::unexpected(std::string(what) + " " + quoted + " leaves the workspace");
      }
      if (has_glob(out.back())) {
        return std::unexpected(std::string(what) + " " + quoted + " has '..' after a wildcard");
      }
      out.pop_back();
      continue;
    }
    // Consecutive ** are one **; keeps matching linear.
    if (seg == "**" && !out.empty() && out.back() == "**") continue;
    out.push_back(std::move(seg));
  }
  return out;
}

// ---- glob matching -------------------------------------------------------------------

bool match_segments(const std::vector<std::string>& pat, std::size_t i,
                    const std::vector<std::string>& path, std::size_t j, std::size_t end) {
  if (i == pat.size()) return j == end;
  if (pat[i] == "**") {
    for (std::size_t k = j; k <= end; ++k)
      if (match_segments(pat, i + 1, path, k, end)) return true;
    return false;
  }
  if (j == end) return false;
  // No FNM_PERIOD: @actions/glob matches dot files with wildcards (minimatch `dot: true`);
  // hidden files are left out by the walk instead, unless include-hidden-files.
  if (::fnmatch(pat[i].c_str(), path[j].c_str(), 0) != 0) return false;
  return match_segments(pat, i + 1, path, j + 1, end);
}

// True when the pattern matches the path or one of its parent folders (a pattern that
// names a folder selects what is inside it).
bool matches_or_contains(const PathPattern& p, const std::vector<std::string>& path) {
  for (std::size_t end = 0; end <= path.size(); ++end)
    if (match_segments(p.segments, 0, path, 0, end)) return true;
  return false;
}

std::vector<std::string> search_root(const PathPattern& p) {
  std::vector<std::string> root;
  for (const auto& seg : p.segments) {
    if (has_glob(seg)) break;
    root.push_back(seg);
  }
  return root;
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// ---- walking the folder --------------------------------------------------------------

struct Walker {
  fs::path top;       // as given
  fs::path top_real;  // canonical, to judge where links point
  ExpandOptions options;
  std::set<std::string> files;
  std::vector<std::string> warnings;

  // Where a symbolic link leads: its target as a path relative to the top, or an error
  // when it leaves the top or dangles.
  std::expected<fs::path, std::string> link_target(const std::string& rel) {
    std::error_code ec;
    fs::path real = fs::canonical(top / rel, ec);
    if (ec) return std::unexpected("symbolic link '" + rel + "' is dangling or unreadable");
    fs::path inside = real.lexically_relative(top_real);
    if (inside.empty() || *inside.begin() == "..") {
      return std::unexpected("symbolic link '" + rel + "' points outside the workspace; refused");
    }
    return inside;
  }

  // Adds `rel` (a link) when it leads to a regular file inside the top.
  std::expected<void, std::string> add_link(const std::string& rel) {
    auto target = link_target(rel);
    if (!target) return std::unexpected(target.error());
    std::error_code ec;
    auto st = fs::symlink_status(top_real / *target, ec);
    if (st.type() == fs::file_type::regular) {
      files.insert(rel);
    } else {
      warnings.push_back("symbolic link '" + rel + "' does not lead to a regular file; skipped");
    }
    return {};
  }

  std::expected<void, std::string> walk_dir(const std::string& rel) {
    std::error_code ec;
    fs::directory_iterator it(rel.empty() ? top : top / rel, ec);
    if (ec) return std::unexpected("cannot list '" + rel + "': " + ec.message());
    for (const auto& entry : it) {
      std::string name = entry.path().filename().string();
      if (!options.include_hidden_files && name.starts_with('.')) continue;
      std::string child = rel.empty() ? name : rel + "/" + name;
      auto type = entry.symlink_status(ec).type();
      if (ec) return std::unexpected("cannot stat '" + child + "': " + ec.message());
      if (type == fs::file_type::directory) {
        if (auto r = walk_dir(child); !r) return r;
      } else if (type == fs::file_type::regular) {
        files.insert(child);
      } else if (type == fs::file_type::symlink) {
        if (auto r = add_link(child); !r) return r;
      }  // sockets, fifos, devices: not artifact content
    }
    return {};
  }

  // Collects what lies under one pattern's search root, checking each component of the
  // root itself without following links.
  std::expected<void, std::string> collect(const std::vector<std::string>& root) {
    for (std::size_t k = 1; k <= root.size(); ++k) {
      std::string rel = join(root, k);
      std::error_code ec;
      auto type = fs::symlink_status(top / rel, ec).type();
      if (type == fs::file_type::not_found) return {};
      if (type == fs::file_type::symlink) {
        if (k == root.size()) return add_link(rel);
        auto target = link_target(rel);  // refuse escaping links even on the way
        if (!target) return std::unexpected(target.error());
        warnings.push_back("symbolic link '" + rel + "' is a folder link; not followed");
        return {};
      }
      if (type == fs::file_type::regular) {
        if (k == root.size()) files.insert(rel);
        return {};
      }
      if (type != fs::file_type::directory) return {};
    }
    return walk_dir(join(root));
  }
};

// ---- opening files without following links -------------------------------------------

// Opens `rel` (relative to the folder `root_fd`), one component at a time with
// O_NOFOLLOW, so no symbolic link anywhere on the way is followed.
std::expected<Fd, std::string> open_beneath(int root_fd, const std::vector<std::string>& rel,
                                            int flags, mode_t mode = 0) {
  if (rel.empty()) return std::unexpected(std::string("empty path"));
  Fd dir(::dup(root_fd));
  if (!dir.ok()) return std::unexpected("dup: " + errno_text());
  for (std::size_t i = 0; i + 1 < rel.size(); ++i) {
    Fd next(::openat(dir.get(), rel[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.ok()) {
      return std::unexpected("'" + join(rel, i + 1) + "': " +
                             (errno == ELOOP || errno == ENOTDIR
                                  ? std::string("not a folder (a symbolic link?); refused")
                                  : errno_text()));
    }
    dir = std::move(next);
  }
  Fd file(::openat(dir.get(), rel.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!file.ok()) {
    return std::unexpected(
        "'" + join(rel) +
        "': " + (errno == ELOOP ? std::string("is a symbolic link; refused") : errno_text()));
  }
  return file;
}

// Creates the folders of `rel` (all but the last component) beneath `root_fd`, refusing
// to pass through a symbolic link, then opens the last component for writing.
std::expected<Fd, std::string> create_beneath(int root_fd, const std::vector<std::string>& rel,
                                              mode_t mode) {
  if (rel.empty()) return std::unexpected(std::string("empty path"));
  Fd dir(::dup(root_fd));
  if (!dir.ok()) return std::unexpected("dup: " + errno_text());
  for (std::size_t i = 0; i + 1 < rel.size(); ++i) {
    if (::mkdirat(dir.get(), rel[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return std::unexpected("cannot create '" + join(rel, i + 1) + "': " + errno_text());
    }
    Fd next(::openat(dir.get(), rel[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.ok()) {
      return std::unexpected("'" + join(rel, i + 1) +
                             "' exists and is not a folder (a symbolic link?); refused");
    }
    dir = std::move(next);
  }
  Fd file(::openat(dir.get(), rel.back().c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!file.ok()) {
    return std::unexpected(
        "cannot write '" + join(rel) +
        "': " + (errno == ELOOP ? std::string("it is a symbolic link; refused") : errno_text()));
  }
  ::fchmod(file.get(), mode);  // O_CREAT's mode does not apply to an existing file
  return file;
}

std::expected<std::uint64_t, std::string> copy_fd(int in, int out, const std::string& what) {
  struct stat st {};
  if (::fstat(in, &st) != 0) return std::unexpected(what + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) return std::unexpected(what + ": not a regular file");
  std::uint64_t total = 0;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(what + ": read: " + errno_text());
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return std::unexpected(what + ": write: " + errno_text());
      done += w;
    }
    total += static_cast<std::uint64_t>(n);
  }
  return total;
}

mode_t file_mode(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  // Keep only whether it is executable: ownership and odd bits mean nothing elsewhere.
  return (st.st_mode & S_IXUSR) ? 0755 : 0644;
}

Fd open_dir(const fs::path& p) { return Fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

// Regular files under `dir` (the store's own folders), relative, sorted.
std::vector<std::string> list_files(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->symlink_status(ec).type() == fs::file_type::regular)
      out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---- public functions ----------------------------------------------------------------

std::expected<void, std::string> validate_artifact_name(std::string_view name) {
  if (name.empty()) return std::unexpected("artifact name is empty");
  if (name.size() > 255) return std::unexpected("artifact name is longer than 255 bytes");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return std::unexpected("artifact name holds a control character");
    if (std::string_view(":*?\"<>|/\\").find(static_cast<char>(c)) != std::string_view::npos) {
      return std::unexpected("artifact name '" + std::string(name) + "' holds '" +
                             std::string(1, static_cast<char>(c)) +
                             "'; not allowed: \" : < > | * ? \\ /");
    }
  }
  if (name.find("..") != std::string_view::npos || name == ".") {
    return std::unexpected("artifact name '" + std::string(name) + "' holds '..' or is '.'");
  }
  if (trim(name).size() != name.size()) {
    return std::unexpected("artifact name '" + std::string(name) +
                           "' starts or ends with white space");
  }
  return {};
}

std::expected<IfNoFilesFound, std::string> parse_if_no_files_found(std::string_view value) {
  if (value.empty() || value == "warn") return IfNoFilesFound::kWarn;
  if (value == "error") return IfNoFilesFound::kError;
  if (value == "ignore") return IfNoFilesFound::kIgnore;
  return std::unexpected("if-no-files-found: '" + std::string(value) +
                         "' is not one of warn, error, ignore");
}

std::string PathPattern::text() const { return segments.empty() ? "." : join(segments); }

std::expected<std::vector<PathPattern>, std::string> parse_path_patterns(std::string_view input) {
  std::vector<PathPattern> out;
  bool any_include = false;
  std::size_t start = 0;
  while (start <= input.size()) {
    std::size_t nl = input.find('\n', start);
    std::string_view line = trim(
        input.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    start = nl == std::string_view::npos ? input.size() + 1 : nl + 1;
    if (line.empty() || line.starts_with('#')) continue;
    PathPattern p;
    if (line.starts_with('!')) {
      p.exclude = true;
      line = trim(line.substr(1));
      if (line.empty()) return std::unexpected("path: '!' without a pattern");
    }
    auto segs = normalise_relative(line, "path");
    if (!segs) return std::unexpected(segs.error());
    p.segments = std::move(*segs);
    any_include = any_include || !p.exclude;
    out.push_back(std::move(p));
  }
  if (!any_include) return std::unexpected("path: no file pattern given");
  return out;
}

std::expected<PathExpansion, std::string> expand_path_patterns(
    const fs::path& dir, const std::vector<PathPattern>& patterns, const ExpandOptions& options) {
  std::error_code ec;
  Walker walker{dir, fs::canonical(dir, ec), options, {}, {}};
  if (ec) return std::unexpected("cannot open '" + dir.string() + "': " + ec.message());

  // Search roots: the literal part of each include pattern, without those inside another.
  std::vector<std::vector<std::string>> roots;
  for (const auto& p : patterns)
    if (!p.exclude) roots.push_back(search_root(p));
  std::sort(roots.begin(), roots.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  std::vector<std::vector<std::string>> kept;
  for (auto& r : roots) {
    if (std::none_of(kept.begin(), kept.end(), [&](const auto& k) { return is_prefix(k, r); }))
      kept.push_back(std::move(r));
  }
  for (const auto& r : kept)
    if (auto res = walker.collect(r); !res) return std::unexpected(res.error());

  PathExpansion out;
  out.warnings = std::move(walker.warnings);
  for (const auto& file : walker.files) {
    auto segs = split(file);
    std::optional<bool> included;  // the last pattern that matches decides
    for (const auto& p : patterns)
      if (matches_or_contains(p, segs)) included = !p.exclude;
    if (included.value_or(false)) out.files.push_back(file);
  }

  // The root as upload-artifact computes it: the common folder of the search roots; a
  // single file named literally is kept without its folders.
  if (kept.size() > 1) {
    std::vector<std::string> lca = kept.front();
    for (const auto& r : kept) {
      std::size_t n = 0;
      while (n < lca.size() && n < r.size() && lca[n] == r[n]) ++n;
      lca.resize(n);
    }
    out.root = join(lca);
  } else if (!kept.empty()) {
    out.root = join(kept.front());
    if (out.files.size() == 1 && out.files.front() == out.root) {
      auto segs = kept.front();
      segs.pop_back();
      out.root = join(segs);
    }
  }
  return out;
}

std::expected<std::string, std::string> resolve_download_path(std::string_view input) {
  auto segs = normalise_relative(trim(input), "path");
  if (!segs) return std::unexpected(segs.error());
  return join(*segs);
}

ArtifactStore::ArtifactStore(fs::path run_dir, std::string scope)
    : run_dir_(std::move(run_dir)), scope_(std::move(scope)) {
  // A store reopened on a run's folder knows what was uploaded before.
  std::error_code ec;
  for (fs::directory_iterator it(artifacts_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (it->symlink_status(ec).type() == fs::file_type::directory && validate_artifact_name(name))
      names_.insert(name);
  }
}

std::expected<ArtifactStore::UploadResult, std::string> ArtifactStore::upload(
    std::string_view name_view, const fs::path& source_dir, std::string_view path_input,
    const UploadOptions& options) {
  if (auto ok = validate_artifact_name(name_view); !ok) return std::unexpected(ok.error());
  auto patterns = parse_path_patterns(path_input);
  if (!patterns) return std::unexpected(patterns.error());
  std::string name(name_view);

  std::uint64_t staging_id;
  {
    std::lock_guard lock(mutex_);
    if (uploading_.contains(name) || (names_.contains(name) && !options.overwrite)) {
      return std::unexpected("an artifact named '" + name +
                             "' was already uploaded in this run (names must be unique; "
                             "use overwrite: true to replace it)");
    }
    uploading_.insert(name);
    staging_id = ++staging_counter_;
  }
  // Releases the reservation however this function ends.
  struct Release {
    ArtifactStore* store;
    std::string name;
    ~Release() {
      std::lock_guard lock(store->mutex_);
      store->uploading_.erase(name);
    }
  } release{this, name};

  auto expansion =
      expand_path_patterns(source_dir, *patterns, ExpandOptions{options.include_hidden_files});
  if (!expansion) return std::unexpected(expansion.error());
  UploadResult result;
  if (expansion->files.empty()) {
    std::string msg = "no files were found with the provided path: ";
    for (std::size_t i = 0; i < patterns->size(); ++i)
      msg +=
          (i ? ", " : "") + std::string((*patterns)[i].exclude ? "!" : "") + (*patterns)[i].text();
    msg += "; no artifact will be uploaded";
    if (options.if_no_files_found == IfNoFilesFound::kError) return std::unexpected(msg);
    if (options.if_no_files_found == IfNoFilesFound::kWarn) result.warning = msg;
    return result;
  }

  std::error_code ec;
  fs::path staging = staging_dir() / std::to_string(staging_id);
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return std::unexpected("cannot create '" + staging.string() + "': " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{staging};

  Fd src_root = open_dir(source_dir), dst_root = open_dir(staging);
  if (!src_root.ok() || !dst_root.ok())
    return std::unexpected("cannot open folders: " + errno_text());
  fs::path source_real = fs::canonical(source_dir, ec);
  auto root_segs = split(expansion->root);
  for (const auto& file : expansion->files) {
    // A listed link leads to a file inside the folder (checked while expanding); open
    // that file itself, never through a link.
    std::string real_rel = file;
    if (fs::symlink_status(source_dir / file, ec).type() == fs::file_type::symlink) {
      fs::path real = fs::canonical(source_dir / file, ec);
      fs::path inside = ec ? fs::path("..") : real.lexically_relative(source_real);
      if (inside.empty() || *inside.begin() == "..")
        return std::unexpected("symbolic link '" + file +
                               "' points outside the workspace; refused");
      real_rel = inside.generic_string();
    }
    auto in = open_beneath(src_root.get(), split(real_rel), O_RDONLY | O_NONBLOCK);
    if (!in) return std::unexpected(in.error());
    auto segs = split(file);
    std::vector<std::string> dest_segs(segs.begin() + static_cast<long>(root_segs.size()),
                                       segs.end());
    auto out = create_beneath(dst_root.get(), dest_segs, file_mode(in->get()));
    if (!out) return std::unexpected(out.error());
    auto n = copy_fd(in->get(), out->get(), "'" + file + "'");
    if (!n) return std::unexpected(n.error());
    result.bytes += *n;
    ++result.file_count;
  }

  fs::path final_dir = artifacts_dir() / name;
  fs::create_directories(artifacts_dir(), ec);
  if (options.overwrite) fs::remove_all(final_dir, ec);
  fs::rename(staging, final_dir, ec);
  if (ec) return std::unexpected("cannot store artifact '" + name + "': " + ec.message());
  {
    std::lock_guard lock(mutex_);
    names_.insert(name);
  }
  result.uploaded = true;
  return result;
}

std::expected<ArtifactStore::DownloadResult, std::string> ArtifactStore::download(
    std::string_view name_view, const fs::path& dest_root, std::string_view subdir) const {
  std::string name(name_view);
  {
    std::lock_guard lock(mutex_);
    if (!names_.contains(name)) {
      std::string known;
      for (const auto& n : names_) known += (known.empty() ? "" : ", ") + n;
      return std::unexpected("no artifact named '" + name +
                             "' in this run (uploaded: " + (known.empty() ? "none" : known) + ")");
    }
  }
  auto prefix = normalise_relative(subdir, "download path");
  if (!prefix) return std::unexpected(prefix.error());
  std::error_code ec;
  fs::create_directories(dest_root, ec);
  Fd dst_root = open_dir(dest_root);
  if (!dst_root.ok())
    return std::unexpected("cannot open '" + dest_root.string() + "': " + errno_text());
  fs::path src = artifacts_dir() / name;
  Fd src_root = open_dir(src);
  if (!src_root.ok()) return std::unexpected("cannot open '" + src.string() + "': " + errno_text());
  DownloadResult result;
  for (const auto& file : list_files(src)) {
    auto segs = split(file);
    auto in = open_beneath(src_root.get(), segs, O_RDONLY);
    if (!in) return std::unexpected(in.error());
    std::vector<std::string> dest_segs = *prefix;
    dest_segs.insert(dest_segs.end(), segs.begin(), segs.end());
    auto out = create_beneath(dst_root.get(), dest_segs, file_mode(in->get()));
    if (!out) return std::unexpected(out.error());
    auto n = copy_fd(in->get(), out->get(), "'" + file + "'");
    if (!n) return std::unexpected(n.error());
    result.bytes += *n;
    ++result.file_count;
  }
  return result;
}

std::expected<ArtifactStore::DownloadResult, std::string> ArtifactStore::download_all(
    const fs::path& dest_root, std::string_view subdir) const {
  auto prefix = normalise_relative(subdir, "download path");
  if (!prefix) return std::unexpected(prefix.error());
  DownloadResult total;
  for (const auto& name : names()) {
    auto segs = *prefix;
    segs.push_back(name);
    auto r = download(name, dest_root, join(segs));
    if (!r) return std::unexpected(r.error());
    total.bytes += r->bytes;
    total.file_count += r->file_count;
  }
  return total;
}

std::vector<std::string> ArtifactStore::names() const {
  std::lock_guard lock(mutex_);
  return {names_.begin(), names_.end()};
}

}  // namespace sandci::agent
