#pragma once
// Pruning the action cache (<state>/actions, see remote_actions.h): trees and mirrors
// of actions no run has used for a while are removed, so that an agent's disk does
// not grow with every action version it ever ran.
//
// "Used" is recorded cheaply on the folders themselves: ActionCache::resolve sets the
// mirror's modification time to now, ActionCache::tree the tree's, each time a run
// asks for them. The agent's store also records each run's resolutions (action_refs):
// the newest record counts as a use too, so trees written before uses were stamped
// (older versions) are not taken for unused. The rule (plan_action_pruning, pure,
// tested apart from the files):
//   - a tree goes when it was not used for `max_unused_ms` (by its stamp, nor by the
//     store's records of runs) and no unfinished run resolved to it (the store's
//     action refs of queued and running runs);
//   - a mirror goes when it was not used for `max_unused_ms` and no tree that stays,
//     nor any unfinished run's action, comes from it;
//   - a tree being written (trees/.tmp-*) goes only when it is older than a day; the
//     pass looks at them only while it holds the cache's lock exclusively, which every
//     writer holds shared while writing, so such a folder belongs to a writer that died.
//
// Concurrency: resolve() and tree() hold ActionCacheLock shared (across processes:
// flock on <state>/actions/prune.lock) while they use and touch a mirror or tree; a
// prune holds it exclusively (without waiting: when a resolution runs, the prune is
// deferred to the next pass) while it reads the times and moves what goes into
// <state>/actions/.trash-*, then deletes that trash without the lock. So a tree a run
// resolves either was touched before the prune read its time (then it is days away
// from removal, ample for the job to mount it, and the run's recorded ref protects
// it as long as the run is unfinished), or is looked up after the prune (then tree()
// writes it again, from a mirror the same resolution touched).
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace sandci::agent {

inline constexpr std::int64_t kActionTempStaleMs = 24LL * 3600 * 1000;

// A tree of the cache: trees/<owner>/<repo>/<commit>.
struct CachedTreeUse {
  std::string owner, repo, commit;
  std::string mirror;        // the mirror folder name its repository is fetched into
  std::int64_t used_ms = 0;  // its modification time: the last use
};

// A mirror folder (mirrors/<name>) or a tree being written (trees/.tmp-*).
struct CachedFolderUse {
  std::string name;
  std::int64_t used_ms = 0;
};

struct ActionCacheContents {
  std::vector<CachedTreeUse> trees;
  std::vector<CachedFolderUse> mirrors;
  std::vector<CachedFolderUse> temporaries;
};

// An action a run resolved (owner/repo as written, commit 40 hex): one an unfinished
// run uses, or the newest record of one in the store.
struct ActionUse {
  std::string repository;
  std::string commit;
  std::string mirror;     // filled by ActionCache::prune from the repository
  std::int64_t at_ms = 0;  // when (records only)
};

struct ActionPrunePlan {
  std::vector<CachedTreeUse> trees;       // sorted by owner, repo, commit
  std::vector<std::string> mirrors;       // sorted
  std::vector<std::string> temporaries;   // sorted
};

// What to remove (see the rule above). A tree's last use is the later of its stamp
// and the newest `recorded` use of its commit (the store's, which also covers trees
// written before uses were stamped); a mirror's the later of its stamp and the newest
// record of its repository. Repositories are compared without case, as forges do;
// commits too.
ActionPrunePlan plan_action_pruning(const ActionCacheContents& contents, const std::vector<ActionUse>& in_use,
                                    const std::vector<ActionUse>& recorded, std::int64_t max_unused_ms,
                                    std::int64_t now_ms);

struct ActionPruneReport {
  std::size_t removed_trees = 0, removed_mirrors = 0, removed_temporaries = 0;
  std::uint64_t freed_bytes = 0;
  bool deferred = false;  // a resolution held the cache: nothing was looked at
  // For the log: each folder removed, relative to <state>/actions ("trees/acme/greet/<sha>",
  // "mirrors/<name>"), and each that could not be, with why (tried again next pass).
  std::vector<std::string> removed;
  std::vector<std::pair<std::string, std::string>> failed;
};

// The cache's lock (see above): shared by users, exclusive for a prune.
class ActionCacheLock {
 public:
  enum class Mode { shared, exclusive_if_free };
  ActionCacheLock(const std::filesystem::path& actions_dir, Mode mode);
  ~ActionCacheLock();
  ActionCacheLock(const ActionCacheLock&) = delete;
  ActionCacheLock& operator=(const ActionCacheLock&) = delete;
  // False when exclusive_if_free found it taken, or the lock file cannot be opened
  // (then users go on unlocked: the cache works as before, a prune is deferred).
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

// Modification time of `path` in ms since the epoch (0 when it cannot be read), and
// setting it to now (the "last use" stamp); a failure to set it is ignored: the
// folder is then merely removed sooner, and never while a run records it.
std::int64_t modified_ms(const std::filesystem::path& path);
void touch(const std::filesystem::path& path);

}  // namespace sandci::agent
