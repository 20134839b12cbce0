#pragma once
// The repository cache: one bare mirror per repository URL under a state folder,
// fetched incrementally, and checkouts of one exact commit into fresh folders.
//
// Layout of the state folder:
//   <name>/        bare mirror (name = mirror_dir_name(url): slug + hash, no secrets)
//   <name>.lock    flock()ed while a fetch of that mirror runs, by any process
//   .tmp-<name>-*  a mirror being built; left by a killed process, removed later
//
// A checkout is a worktree plus a minimal `.git`: HEAD detached at the commit, an
// index, and objects/info/alternates naming the mirror's objects folder by its
// absolute path (no object is copied). A sandbox that runs git in the checkout must
// see that folder at the same path: CheckoutResult::object_dirs lists what to mount,
// read-only.
//
// Thread-safe: fetches of one mirror are serialized (mutex + flock, so across
// processes too), different mirrors fetch in parallel, checkouts run in parallel.
#include <atomic>
#include <chrono>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "git/credentials.h"
#include "git/error.h"

namespace sandci::git {

struct FetchProgress {
  unsigned received_objects = 0;
  unsigned total_objects = 0;
  unsigned indexed_objects = 0;
  std::size_t received_bytes = 0;
};

struct FetchOptions {
  Credentials credentials;  // credentials in the URL itself are used when this is empty
  bool pull_requests = false;  // also refs/pull/*/head and refs/merge-requests/*/head
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};  // whole fetch
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(2)};  // server silence
  // Called on the fetching thread, at most every 100 ms and once at the end.
  std::function<void(const FetchProgress&)> on_progress;
  // When set and it becomes true (a signal handler's flag, say), the fetch stops at
  // libgit2's next progress report with ErrorKind::kCancelled; the mirror is left
  // as it was (a mirror being built is removed).
  const std::atomic<bool>* cancel = nullptr;
};

struct FetchResult {
  std::filesystem::path mirror;  // the bare repository
  FetchProgress progress;        // final figures of this fetch
  bool created = false;          // the mirror did not exist before
  bool rebuilt = false;          // the mirror was damaged and was rebuilt from scratch
  int credential_tries = 0;      // secrets handed to libgit2 (1 when auth was needed)
};

struct CheckoutOptions {
  bool submodules = false;        // recursive, each through its own mirror
  bool fetch_if_missing = true;   // fetch once when the commit is not in the mirror
  FetchOptions fetch;             // for those fetches, submodules included
  // Credentials for a submodule URL; when empty, a submodule on the same server
  // (scheme, host, port) uses fetch.credentials and any other gets none.
  std::function<Credentials(std::string_view url)> submodule_credentials;
};

struct CheckoutResult {
  std::filesystem::path dir;
  std::string sha;
  std::vector<std::filesystem::path> object_dirs;  // alternates targets (mirrors' objects)
};

class MirrorCache {
 public:
  explicit MirrorCache(std::filesystem::path state_dir);
  ~MirrorCache();
  MirrorCache(const MirrorCache&) = delete;
  MirrorCache& operator=(const MirrorCache&) = delete;

  // Where the mirror of `url` lives (whether or not it exists yet).
  std::filesystem::path mirror_path(std::string_view url) const;

  // Creates the mirror on first use, otherwise fetches into it: branches and tags
  // (pull-request refs when asked), pruning refs the server deleted. Repairs a mirror
  // left behind by a killed fetch, or rebuilds it when it is damaged. A new mirror
  // of a local path starts with the source's object files hard-linked (copied
  // across file systems), as `git clone --local` does: libgit2's local transport
  // would otherwise rebuild and delta-compress a pack object by object.
  std::expected<FetchResult, Error> fetch(std::string_view url, const FetchOptions& options = {});

  // Writes commit `sha` (40 hex) of `url` into `dest`, which must not exist or be an
  // empty folder. Errors: kShaNotFound when the commit is not in the repository even
  // after a fetch; fetch errors; kInvalidArgument for a bad SHA or destination. On
  // failure `dest` is left as it was found (absent, or empty).
  std::expected<CheckoutResult, Error> checkout(std::string_view url, std::string_view sha,
                                                const std::filesystem::path& dest,
                                                const CheckoutOptions& options = {});

  struct MirrorState;  // per-mirror locks (internal)

 private:
  std::shared_ptr<MirrorState> state_for(const std::string& name);
  std::expected<FetchResult, Error> fetch_locked(std::string_view url, const FetchOptions& options,
                                                 MirrorState& state);
  std::expected<CheckoutResult, Error> checkout_at_depth(std::string_view url, std::string_view sha,
                                                         const std::filesystem::path& dest,
                                                         const CheckoutOptions& options, int depth);

  std::filesystem::path state_dir_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<MirrorState>> states_;
};

}  // namespace sandci::git
