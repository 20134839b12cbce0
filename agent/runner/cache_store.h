#pragma once
// The dependency cache of actions/cache, kept by the agent on the host, one folder
// per repository, with GitHub's rules: an entry is (scope ref, key, version); a run
// reads its own ref's entries, then the default (or, for a pull request, the base)
// branch's, and writes only its own ref's; lookups try the exact key, then the key
// and each restore key as a prefix, newest entry first.
//
// Layout under the root folder:
//   <repo>/<id>/meta.json   key, version, ref, bytes, created (a tick)
//   <repo>/<id>/used        the tick of the last restore (least recently used goes first)
//   <repo>/<id>/files/      the saved files, by their path in the sandbox (workspace/...)
//   <repo>/.tmp-<pid>-<n>   an entry being written, or being deleted
//   <repo>/.clock           the repository's tick counter
//   <repo>.lock             flock()ed while the repository's entries change
// An entry is built in a .tmp folder and renamed into place, so a crash never leaves
// a half entry: a .tmp folder whose process is gone is removed by the next save.
// Entries are folders rather than archives: the sandbox's copy_in takes a folder, and
// the rename is just as atomic.
//
// Thread- and process-safe (flock per repository). A restore reads an entry's files
// without the lock; an eviction meanwhile (another job saving past the budget) makes
// that restore fail, which the cache steps report as a warning, as GitHub does.
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent {

// Where a run's cache steps read and write.
struct CacheScope {
  std::string repository;              // owner/name: entries never cross repositories
  std::string write_ref;               // refs/heads/feature, refs/pull/7/merge
  std::vector<std::string> read_refs;  // write_ref first, then the default or base branch
};

// A cache key as GitHub accepts it: not empty, at most 512 characters, no comma.
std::expected<void, std::string> validate_cache_key(std::string_view key);

struct CacheEntry {
  std::string key;
  std::string version;  // what the paths were (entries of other paths never match)
  std::string ref;      // the scope it was written in
  std::uint64_t bytes = 0;
  std::uint64_t created = 0;    // tick: higher is newer
  std::uint64_t last_used = 0;  // tick of the last save or restore
  std::filesystem::path files;  // the folder holding the saved files
};

struct CacheQuery {
  std::string primary_key;
  std::vector<std::string> restore_keys;  // tried as prefixes, in order
  std::string version;
};

class CacheStore {
 public:
  // Keeps entries under `root` (created on first save); each repository's entries
  // together stay within `budget_bytes` (0: no limit).
  CacheStore(std::filesystem::path root, std::uint64_t budget_bytes);

  // The entry to restore: for each of scope.read_refs in order, the entry with
  // exactly the primary key, else the newest whose key starts with the primary key,
  // else the newest starting with each restore key in turn. Same version only.
  // Marks the entry used (it goes last in eviction). nullopt: nothing matches.
  std::expected<std::optional<CacheEntry>, std::string> find(const CacheScope& scope, const CacheQuery& query);

  // A fresh empty folder on the store's file system for the caller to fill with
  // the files of an entry, then hand to save().
  std::expected<std::filesystem::path, std::string> staging_folder(std::string_view repository);

  enum class SaveStatus {
    kSaved,
    kExists,   // the scope already has this key and version: entries are immutable
    kTooBig,   // the entry alone is larger than the budget
  };
  struct SaveResult {
    SaveStatus status = SaveStatus::kSaved;
    std::uint64_t bytes = 0;
    std::vector<std::string> evicted;  // keys removed to stay within the budget
  };
  // Turns `files` (a folder from staging_folder, consumed in every case) into the
  // entry `key` of scope.write_ref, then evicts least recently used entries of the
  // repository until it fits the budget (never the new entry).
  std::expected<SaveResult, std::string> save(const CacheScope& scope, std::string_view key,
                                              std::string_view version, const std::filesystem::path& files);

  // The repository's complete entries, newest first.
  std::vector<CacheEntry> entries(std::string_view repository) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path repo_dir(std::string_view repository) const;

  std::filesystem::path root_;
  std::uint64_t budget_bytes_;
};

}  // namespace sandci::agent
