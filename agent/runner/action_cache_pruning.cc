#include "agent/runner/action_cache_pruning.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "agent/runner/folder_util.h"
#include "agent/runner/remote_actions.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_full_sha(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string tree_key(std::string_view owner, std::string_view repo, std::string_view commit) {
  return lower(owner) + "/" + lower(repo) + "@" + lower(commit);
}

// Non-dot subfolders of `dir` (not through symbolic links), sorted.
std::vector<fs::path> folders_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !it->is_symlink(type_ec) && !it->path().filename().string().starts_with("."))
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Trees are checked out read-only for nobody in particular, but a checkout may hold
// read-only folders: make them writable so remove_all can empty them.
void make_removable(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !it->is_symlink(type_ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, type_ec);
  }
}

}  // namespace

ActionPrunePlan plan_action_pruning(const ActionCacheContents& contents, const std::vector<ActionUse>& in_use,
                                    const std::vector<ActionUse>& recorded, std::int64_t max_unused_ms,
                                    std::int64_t now_ms) {
  const std::int64_t cutoff = now_ms - max_unused_ms;
  auto key_of = [](const ActionUse& action) {
    const auto slash = action.repository.find('/');
    return slash == std::string::npos ? std::string()
                                      : tree_key(action.repository.substr(0, slash),
                                                 action.repository.substr(slash + 1), action.commit);
  };
  std::set<std::string> used_trees, wanted_mirrors;
  for (const auto& action : in_use) {
    used_trees.insert(key_of(action));
    if (!action.mirror.empty()) wanted_mirrors.insert(action.mirror);
  }
  std::map<std::string, std::int64_t> tree_records, mirror_records;
  for (const auto& use : recorded) {
    auto& tree = tree_records[key_of(use)];
    tree = std::max(tree, use.at_ms);
    auto& mirror = mirror_records[use.mirror];
    mirror = std::max(mirror, use.at_ms);
  }
  auto recorded_at = [](const std::map<std::string, std::int64_t>& records, const std::string& key) {
    const auto it = records.find(key);
    return it == records.end() ? std::int64_t{0} : it->second;
  };
  ActionPrunePlan plan;
  for (const auto& tree : contents.trees) {
    const std::string key = tree_key(tree.owner, tree.repo, tree.commit);
    const std::int64_t used = std::max(tree.used_ms, recorded_at(tree_records, key));
    if (used < cutoff && !used_trees.contains(key))
      plan.trees.push_back(tree);
    else if (!tree.mirror.empty())
      wanted_mirrors.insert(tree.mirror);
  }
  for (const auto& mirror : contents.mirrors) {
    const std::int64_t used = std::max(mirror.used_ms, recorded_at(mirror_records, mirror.name));
    if (used < cutoff && !wanted_mirrors.contains(mirror.name)) plan.mirrors.push_back(mirror.name);
  }
  for (const auto& temp : contents.temporaries)
    if (temp.used_ms < now_ms - kActionTempStaleMs) plan.temporaries.push_back(temp.name);
  std::sort(plan.trees.begin(), plan.trees.end(), [](const CachedTreeUse& a, const CachedTreeUse& b) {
    return std::tie(a.owner, a.repo, a.commit) < std::tie(b.owner, b.repo, b.commit);
  });
  std::sort(plan.mirrors.begin(), plan.mirrors.end());
  std::sort(plan.temporaries.begin(), plan.temporaries.end());
  return plan;
}

ActionCacheLock::ActionCacheLock(const fs::path& actions_dir, Mode mode) {
  std::error_code ec;
  fs::create_directories(actions_dir, ec);
  fd_ = ::open((actions_dir / "prune.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return;
  const int operation = mode == Mode::shared ? LOCK_SH : LOCK_EX | LOCK_NB;
  int rc;
  do rc = ::flock(fd_, operation);
  while (rc != 0 && errno == EINTR);
  held_ = rc == 0;
}

ActionCacheLock::~ActionCacheLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

std::int64_t modified_ms(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

void touch(const fs::path& path) { ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0); }

// ---- ActionCache::prune ----

ActionPruneReport ActionCache::prune(std::vector<ActionUse> in_use, std::vector<ActionUse> recorded,
                                     std::int64_t max_unused_ms, std::int64_t now_ms) {
  const fs::path actions = options_.state_dir / "actions";
  const fs::path mirrors = actions / "mirrors";
  ActionPruneReport report;
  auto mirror_of = [&](const std::string& owner, const std::string& repo) {
    return mirrors_.mirror_path(action_repository_url(options_.source, owner, repo)).filename().string();
  };
  for (auto* actions_of : {&in_use, &recorded})
    for (auto& action : *actions_of) {
      const auto slash = action.repository.find('/');
      if (slash != std::string::npos)
        action.mirror = mirror_of(action.repository.substr(0, slash), action.repository.substr(slash + 1));
    }
  std::vector<fs::path> trash;
  {
    ActionCacheLock lock(actions, ActionCacheLock::Mode::exclusive_if_free);
    if (!lock.held()) {
      report.deferred = true;
      return report;
    }
    // What is there and when it was last used, read under the lock: no use can
    // start or end meanwhile.
    ActionCacheContents contents;
    for (const fs::path& owner : folders_in(trees_dir()))
      for (const fs::path& repo : folders_in(owner))
        for (const fs::path& tree : folders_in(repo))
          if (is_full_sha(tree.filename().string()))
            contents.trees.push_back({owner.filename().string(), repo.filename().string(),
                                      tree.filename().string(),
                                      mirror_of(owner.filename().string(), repo.filename().string()),
                                      modified_ms(tree)});
    for (const fs::path& mirror : folders_in(mirrors))
      contents.mirrors.push_back({mirror.filename().string(), modified_ms(mirror)});
    std::error_code ec;
    for (fs::directory_iterator it(trees_dir(), ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().starts_with(".tmp-"))
        contents.temporaries.push_back({it->path().filename().string(), modified_ms(it->path())});

    const ActionPrunePlan plan = plan_action_pruning(contents, in_use, recorded, max_unused_ms, now_ms);
    // Moved aside under the lock (a rename is instant), deleted after it: users wait
    // for the lock only as long as the renames take.
    auto move_aside = [&](const fs::path& from) {
      const fs::path to = actions / (".trash-" + random_suffix());
      const std::string name = fs::relative(from, actions, ec).string();
      std::error_code rename_ec;
      fs::rename(from, to, rename_ec);
      if (rename_ec) {
        report.failed.emplace_back(name, rename_ec.message());
        return false;
      }
      report.removed.push_back(name);
      trash.push_back(to);
      return true;
    };
    for (const auto& tree : plan.trees)
      if (move_aside(trees_dir() / tree.owner / tree.repo / tree.commit)) ++report.removed_trees;
    for (const auto& name : plan.mirrors)
      if (move_aside(mirrors / name)) {
        fs::remove(mirrors / (name + ".lock"), ec);
        ++report.removed_mirrors;
      }
    for (const auto& name : plan.temporaries)
      if (move_aside(trees_dir() / name)) ++report.removed_temporaries;
    // A repository with no tree and no mirror left is forgotten (`sandci actions list`
    // lists the folders): only empty folders are removed.
    for (const fs::path& owner : folders_in(trees_dir())) {
      for (const fs::path& repo : folders_in(owner))
        if (!fs::exists(mirrors / mirror_of(owner.filename().string(), repo.filename().string()), ec))
          fs::remove(repo, ec);
      fs::remove(owner, ec);
    }
  }
  // Trash a crashed pass left behind is emptied too.
  std::error_code ec;
  for (fs::directory_iterator it(actions, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with(".trash-") &&
        std::find(trash.begin(), trash.end(), it->path()) == trash.end())
      trash.push_back(it->path());
  for (const fs::path& dir : trash) {
    report.freed_bytes += folder_bytes(dir);
    make_removable(dir);
    fs::remove_all(dir, ec);
    if (ec) report.failed.emplace_back(dir.filename().string(), ec.message());  // emptied next pass
  }
  return report;
}

}  // namespace sandci::agent
