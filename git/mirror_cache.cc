#include "git/mirror_cache.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/file.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "git/checkout_writer.h"
#include "git/fetcher.h"
#include "git/git_handles.h"
#include "git/libgit2_init.h"
#include "git/url.h"

namespace sandci::git {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct MirrorCache::MirrorState {
  std::mutex fetch_mu;            // one fetch at a time in this process
  std::shared_mutex swap_mu;      // exclusive only while a rebuilt mirror is moved in
};

namespace {

// flock() on <name>.lock for the life of the object: the cross-process half of
// "one fetch per mirror". The kernel drops it if the process dies.
class FileLock {
 public:
  static std::expected<FileLock, Error> acquire(const fs::path& file, Clock::time_point deadline,
                                                const std::string& url) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return std::unexpected(Error{ErrorKind::kIo, "cannot open lock file " + file.string(), url});
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        ::close(fd);
        return std::unexpected(Error{ErrorKind::kIo, "cannot lock " + file.string(), url});
      }
      if (Clock::now() >= deadline) {
        ::close(fd);
        return std::unexpected(
            Error{ErrorKind::kTimeout, "another process kept the mirror locked", url});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < 8; ++i) out += kChars[rng() % (sizeof kChars - 1)];
  return out;
}

// With the flock held nobody else writes the mirror, so lock files and half-written
// packs are leftovers of a killed fetch; libgit2 would refuse to update a locked ref.
void remove_stale_files(const fs::path& mirror) {
  std::error_code ec;
  for (const char* top : {"HEAD.lock", "config.lock", "packed-refs.lock", "FETCH_HEAD.lock",
                          "index.lock", "shallow.lock"}) {
    fs::remove(mirror / top, ec);
  }
  for (auto it = fs::recursive_directory_iterator(mirror / "refs", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".lock") fs::remove(it->path(), ec);
  }
  for (auto it = fs::directory_iterator(mirror / "objects" / "pack", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.starts_with("pack_git2_") || name.starts_with("tmp_") || name.ends_with(".lock")) {
      fs::remove(it->path(), ec);
    }
  }
}

void remove_stale_temp_dirs(const fs::path& state_dir, const std::string& name) {
  std::error_code ec;
  std::string prefix = ".tmp-" + name + "-";
  std::string old_prefix = ".old-" + name + "-";
  for (auto it = fs::directory_iterator(state_dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    auto file = it->path().filename().string();
    if (file.starts_with(prefix) || file.starts_with(old_prefix)) fs::remove_all(it->path(), ec);
  }
}

// A mirror is usable when it opens and every ref points at an object it has. A
// killed fetch cannot break more than that: libgit2 renames a pack into place only
// once it is complete, and updates refs after.
bool mirror_is_sound(const fs::path& mirror) {
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, mirror.c_str()) != 0) return false;
  RepoPtr repo(raw);
  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo.get()) != 0) return false;
  OdbPtr odb(raw_odb);
  git_reference_iterator* raw_iter = nullptr;
  if (git_reference_iterator_new(&raw_iter, repo.get()) != 0) return false;
  RefIterPtr iter(raw_iter);
  git_reference* raw_ref = nullptr;
  int rc;
  while ((rc = git_reference_next(&raw_ref, iter.get())) == 0) {
    RefPtr ref(raw_ref);
    if (git_reference_type(ref.get()) != GIT_REFERENCE_DIRECT) continue;
    if (!git_odb_exists(odb.get(), git_reference_target(ref.get()))) return false;
  }
  return rc == GIT_ITEROVER;
}

std::expected<void, Error> init_bare(const fs::path& dir, const std::string& redacted) {
  git_repository* raw = nullptr;
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
  if (git_repository_init_ext(&raw, dir.c_str(), &opts) != 0) {
    return std::unexpected(
        Error{ErrorKind::kIo, std::string("cannot create mirror: ") + last_git_message(), redacted});
  }
  RepoPtr repo(raw);
  // For people inspecting the cache: `git -C <mirror> remote -v` names the source.
  git_config* raw_cfg = nullptr;
  if (git_repository_config(&raw_cfg, repo.get()) == 0) {
    ConfigPtr cfg(raw_cfg);
    git_config_set_string(cfg.get(), "remote.origin.url", redacted.c_str());
    git_config_set_bool(cfg.get(), "remote.origin.mirror", 1);
  }
  return {};
}

// The objects folder of the repository at local path `source` (bare, with a
// work tree, or a linked worktree); nullopt when it is no repository.
std::optional<fs::path> local_objects_dir(const std::string& source) {
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, source.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) return std::nullopt;
  RepoPtr repo(raw);
  const char* common = git_repository_commondir(repo.get());
  if (!common) return std::nullopt;
  fs::path objects = fs::path(common) / "objects";
  std::error_code ec;
  if (!fs::is_directory(objects, ec)) return std::nullopt;
  return objects;
}

// Seeds a new, empty mirror with a local source's object files: packs and loose
// objects are never changed once written, so hard links are safe (git clone
// --local does the same); a copy where links cannot be made. Alternates are not
// followed: the fetch that follows brings whatever is still missing. Best effort:
// the fetch is what makes the mirror complete and correct.
void seed_from_local(const fs::path& objects, const fs::path& mirror, const std::atomic<bool>* cancel) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(objects, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (cancel && cancel->load()) return;
    const fs::path rel = it->path().lexically_relative(objects);
    const std::string top = rel.begin()->string();
    if (top == "info" || top == "tmp") {
      it.disable_recursion_pending();
      continue;
    }
    const std::string name = it->path().filename().string();
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec) || name.starts_with("tmp_") || name.starts_with("pack_git2_") ||
        name.ends_with(".lock") || name.ends_with(".keep"))
      continue;
    const fs::path dest = mirror / "objects" / rel;
    fs::create_directories(dest.parent_path(), file_ec);
    if (fs::exists(dest, file_ec)) continue;
    fs::create_hard_link(it->path(), dest, file_ec);
    if (file_ec) fs::copy_file(it->path(), dest, file_ec);
  }
}

}  // namespace

MirrorCache::MirrorCache(fs::path state_dir) : state_dir_(std::move(state_dir)) {
  ensure_libgit2();
}

MirrorCache::~MirrorCache() = default;

fs::path MirrorCache::mirror_path(std::string_view url) const {
  return state_dir_ / mirror_dir_name(url);
}

std::shared_ptr<MirrorCache::MirrorState> MirrorCache::state_for(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& slot = states_[name];
  if (!slot) slot = std::make_shared<MirrorState>();
  return slot;
}

std::expected<FetchResult, Error> MirrorCache::fetch(std::string_view url,
                                                     const FetchOptions& options) {
  std::string redacted = redact_url(url);
  if (!parse_repo_url(url)) {
    return std::unexpected(Error{ErrorKind::kInvalidArgument, "malformed repository URL", redacted});
  }
  auto state = state_for(mirror_dir_name(url));
  std::lock_guard lock(state->fetch_mu);
  return fetch_locked(url, options, *state);
}

std::expected<FetchResult, Error> MirrorCache::fetch_locked(std::string_view url,
                                                            const FetchOptions& options,
                                                            MirrorState& state) {
  std::string redacted = redact_url(url);
  std::string name = mirror_dir_name(url);
  fs::path mirror = state_dir_ / name;
  std::error_code ec;
  fs::create_directories(state_dir_, ec);
  auto file_lock = FileLock::acquire(state_dir_ / (name + ".lock"), Clock::now() + options.timeout,
                                     redacted);
  if (!file_lock) return std::unexpected(file_lock.error());
  remove_stale_temp_dirs(state_dir_, name);

  FetchResult result;
  result.mirror = mirror;
  bool exists = fs::exists(mirror / "HEAD", ec);
  if (exists) {
    remove_stale_files(mirror);
    if (mirror_is_sound(mirror)) {
      auto outcome = fetch_into(mirror, url, options);
      if (outcome) {
        result.progress = outcome->progress;
        result.credential_tries = outcome->credential_tries;
        return result;
      }
      if (!outcome.error().local_damage) return std::unexpected(outcome.error().error);
    }
    result.rebuilt = true;
  } else {
    result.created = true;
  }

  // Build a complete mirror beside the old one, then swap: a failure or a kill
  // half-way never leaves a half-built mirror under the real name.
  fs::path temp = state_dir_ / (".tmp-" + name + "-" + random_suffix());
  if (auto made = init_bare(temp, redacted); !made) return std::unexpected(made.error());
  if (auto parsed = parse_repo_url(url); parsed && parsed->scheme == "file" && parsed->host.empty())
    if (auto objects = local_objects_dir(parsed->path)) seed_from_local(*objects, temp, options.cancel);
  auto outcome = fetch_into(temp, url, options);
  if (!outcome) {
    fs::remove_all(temp, ec);
    return std::unexpected(outcome.error().error);
  }
  result.progress = outcome->progress;
  result.credential_tries = outcome->credential_tries;
  {
    std::unique_lock swap(state.swap_mu);
    fs::path old = state_dir_ / (".old-" + name + "-" + random_suffix());
    if (exists) fs::rename(mirror, old, ec);
    fs::rename(temp, mirror, ec);
    if (ec) {
      fs::remove_all(temp, ec);
      return std::unexpected(Error{ErrorKind::kIo, "cannot move the new mirror into place: " +
                                                       ec.message(), redacted});
    }
    fs::remove_all(old, ec);
  }
  return result;
}

std::expected<CheckoutResult, Error> MirrorCache::checkout(std::string_view url,
                                                           std::string_view sha,
                                                           const fs::path& dest,
                                                           const CheckoutOptions& options) {
  std::error_code ec;
  bool existed = fs::exists(dest, ec);
  if (existed && (!fs::is_directory(dest, ec) || !fs::is_empty(dest, ec))) {
    return std::unexpected(Error{ErrorKind::kInvalidArgument,
                                 "checkout folder is not empty: " + dest.string(), redact_url(url)});
  }
  auto result = checkout_at_depth(url, sha, dest, options, 0);
  // Whatever failed, a submodule included, no half checkout stays behind.
  if (!result) {
    if (!existed) {
      fs::remove_all(dest, ec);
    } else {
      for (auto it = fs::directory_iterator(dest, ec); !ec && it != fs::directory_iterator();
           it.increment(ec)) {
        fs::remove_all(it->path(), ec);
      }
    }
  }
  return result;
}

std::expected<CheckoutResult, Error> MirrorCache::checkout_at_depth(
    std::string_view url, std::string_view sha, const fs::path& dest,
    const CheckoutOptions& options, int depth) {
  std::string redacted = redact_url(url);
  if (!parse_repo_url(url)) {
    return std::unexpected(Error{ErrorKind::kInvalidArgument, "malformed repository URL", redacted});
  }
  git_oid oid;
  if (sha.size() != GIT_OID_HEXSZ || git_oid_fromstrn(&oid, sha.data(), sha.size()) != 0) {
    return std::unexpected(Error{ErrorKind::kInvalidArgument,
                                 "not a full 40-hex commit id: '" + std::string(sha.substr(0, 80)) + "'",
                                 redacted});
  }
  std::string name = mirror_dir_name(url);
  fs::path mirror = state_dir_ / name;
  auto state = state_for(name);

  auto has_commit = [&] {
    std::shared_lock swap(state->swap_mu);
    return commit_in_mirror(mirror, oid);
  };
  if (!has_commit()) {
    if (!options.fetch_if_missing) {
      return std::unexpected(Error{ErrorKind::kShaNotFound,
                                   "commit " + std::string(sha) + " is not in the mirror", redacted});
    }
    if (auto fetched = fetch(url, options.fetch); !fetched) return std::unexpected(fetched.error());
    if (!has_commit()) {
      return std::unexpected(Error{ErrorKind::kShaNotFound,
                                   "commit " + std::string(sha) +
                                       " is not in the repository (force-pushed away or never pushed)",
                                   redacted});
    }
  }

  std::shared_lock swap(state->swap_mu);
  auto written = write_checkout(mirror, oid, dest, redacted);
  if (!written) return std::unexpected(written.error());
  CheckoutResult result{dest, std::string(sha), {mirror / "objects"}};
  if (!options.submodules) return result;
  swap.unlock();

  constexpr int kMaxDepth = 8;  // .gitmodules cycles would otherwise recurse forever
  for (const auto& sub : written->submodules) {
    if (depth + 1 > kMaxDepth) {
      return std::unexpected(Error{ErrorKind::kInvalidArgument, "submodules nested too deep", redacted});
    }
    std::string sub_url = resolve_submodule_url(url, sub.url);
    CheckoutOptions sub_options = options;
    if (options.submodule_credentials) {
      sub_options.fetch.credentials = options.submodule_credentials(sub_url);
    } else if (!same_server(url, sub_url)) {
      // A token or key for one server is never offered to another one.
      sub_options.fetch.credentials = Credentials{{}, {}, options.fetch.credentials.known_hosts};
    }
    auto sub_result = checkout_at_depth(sub_url, sub.sha, dest / sub.path, sub_options, depth + 1);
    if (!sub_result) {
      Error e = sub_result.error();
      e.message = "submodule " + sub.path + ": " + e.message;
      return std::unexpected(e);
    }
    for (auto& dir : sub_result->object_dirs) result.object_dirs.push_back(dir);
  }
  return result;
}

}  // namespace sandci::git
