#include "agent/runner/remote_actions.h"

#include <algorithm>
#include <random>
#include <set>

#include "git/local_repo.h"
#include "agent/runner/folder_util.h"
#include "git/ref_list.h"
#include "git/url.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_hex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool is_full_sha(std::string_view text) { return text.size() == 40 && is_hex(text); }

// Owner and repository names as forges allow them; also keeps them safe as folder
// names (no "..", no '/').
bool valid_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// A tag, branch or commit: git's ref-name rules, narrowed to what names versions,
// so that revision syntax (main~1, HEAD^, @{-1}) never reaches rev-parse.
bool valid_ref(std::string_view ref) {
  if (ref.empty() || ref.front() == '-' || ref.front() == '/' || ref.front() == '.' || ref.back() == '/' ||
      ref.back() == '.' || ref == "HEAD" || ref.find("..") != std::string_view::npos ||
      ref.find("//") != std::string_view::npos || ref.ends_with(".lock"))
    return false;
  return std::all_of(ref.begin(), ref.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '/' || c == '+';
  });
}

std::optional<std::string> uses_problem(const scheduler::UsesRef& ref) {
  const std::string spec = ref.repository() + "@" + ref.ref;
  if (ref.kind != scheduler::UsesRef::Kind::remote) return "'" + ref.name() + "' is not a remote action";
  if (!valid_name(ref.owner)) return "'" + spec + "': '" + ref.owner + "' is not a valid owner name";
  if (!valid_name(ref.repo)) return "'" + spec + "': '" + ref.repo + "' is not a valid repository name";
  if (!valid_ref(ref.ref))
    return "'" + spec + "': '" + ref.ref + "' is not a tag, branch or commit name";
  return std::nullopt;
}

std::string add_hint(const scheduler::UsesRef& ref) {
  return "on an agent without network, fill the cache with `sandci actions add " + ref.repository() + "@" +
         ref.ref + "`";
}

// The commit `ref` names in the mirror: a tag first, then a branch (git's order),
// then a full or abbreviated commit.
std::expected<std::string, std::string> commit_in(const fs::path& mirror, const std::string& ref) {
  for (const std::string& name : {"refs/tags/" + ref, "refs/heads/" + ref})
    if (auto commit = git::resolve_commit(mirror, name)) return *commit;
  if (is_hex(ref) && ref.size() >= 4)
    if (auto commit = git::resolve_commit(mirror, lower(ref))) return *commit;
  return std::unexpected(std::string("no tag, branch or commit '") + ref + "'");
}

std::vector<fs::path> subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->path().filename().string().starts_with(".")) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string action_repository_url(std::string_view source, std::string_view owner, std::string_view repo) {
  std::string base(source);
  auto replace_all = [&base](std::string_view from, std::string_view to) {
    for (std::size_t at = base.find(from); at != std::string::npos; at = base.find(from, at + to.size()))
      base.replace(at, from.size(), to);
  };
  if (base.find("{owner}") != std::string::npos || base.find("{repo}") != std::string::npos) {
    replace_all("{owner}", owner);
    replace_all("{repo}", repo);
    return base;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + std::string(owner) + "/" + std::string(repo);
}

std::optional<std::string> actions_source_problem(std::string_view source) {
  const std::string text(source);
  const auto url = git::parse_repo_url(source);
  if (!url) return "'" + text + "' is not a URL";
  const bool https = url->scheme == "https" || url->scheme == "http";
  if (!url->password.empty() || (https && !url->user.empty()))
    return "'" + git::redact_url(source) + "' must not hold credentials: give them in the actions' clone section";
  if (text.find('?') != std::string::npos || text.find('#') != std::string::npos)
    return "'" + git::redact_url(source) + "' must not have a query or fragment";
  if (!https && url->scheme != "ssh" && url->scheme != "git" && url->scheme != "file")
    return "'" + text + "' must be an https, ssh, git or file URL";
  if (url->scheme != "file" && url->host.empty()) return "'" + text + "' names no host";
  if (url->scheme == "file" && !url->path.starts_with("/")) return "'" + text + "' must be an absolute path";
  return std::nullopt;
}

std::expected<scheduler::UsesRef, std::string> parse_action_spec(std::string_view text) {
  const std::string usage =
      "'" + std::string(text) + "' must be owner/repo@ref (a tag, branch or commit), like actions/checkout@v4";
  if (text.starts_with("./") || text.starts_with("docker://") || text.find('@') == std::string_view::npos)
    return std::unexpected(usage);
  auto ref = scheduler::parse_uses(text);
  if (!ref) return std::unexpected(usage);
  if (auto problem = uses_problem(*ref)) return std::unexpected(*problem);
  return ref;
}

// ---- ActionCache ----

ActionCache::ActionCache(ActionsOptions options)
    : options_(std::move(options)), mirrors_(options_.state_dir / "actions" / "mirrors") {}

std::string ActionCache::url_of(const scheduler::UsesRef& ref) const {
  return action_repository_url(options_.source, ref.owner, ref.repo);
}

std::expected<ActionResolution, std::string> ActionCache::resolve(const scheduler::UsesRef& ref,
                                                                  const git::Credentials* credentials) {
  if (auto problem = uses_problem(ref)) return std::unexpected(*problem);
  // Held until the mirror is stamped as used: a prune waits or comes after, when
  // the stamp keeps the mirror (action_cache_pruning.h).
  ActionCacheLock lock(options_.state_dir / "actions", ActionCacheLock::Mode::shared);
  auto resolution = resolve_locked(ref, credentials);
  if (resolution) touch(mirrors_.mirror_path(url_of(ref)));
  return resolution;
}

std::expected<ActionResolution, std::string> ActionCache::resolve_locked(const scheduler::UsesRef& ref,
                                                                         const git::Credentials* credentials) {
  const std::string url = url_of(ref);
  const std::string spec = ref.repository() + "@" + ref.ref;
  ActionResolution resolution{ref.repository(), ref.ref, "", git::redact_url(url), false, ""};
  const fs::path mirror = mirrors_.mirror_path(url);
  std::error_code ec;
  fs::create_directories(trees_dir() / ref.owner / ref.repo, ec);  // how `actions list` finds it

  // Commits never change: one already in the mirror needs no network.
  if (is_full_sha(ref.ref)) {
    if (auto commit = git::resolve_commit(mirror, lower(ref.ref))) {
      resolution.commit = *commit;
      return resolution;
    }
  }
  git::FetchOptions fetch;
  fetch.credentials = credentials ? *credentials : options_.credentials;
  fetch.timeout = options_.fetch_timeout;
  fetch.connect_timeout = options_.connect_timeout;
  // A source that is a folder of repositories (an offline agent's copy) without
  // this one is as good as unreachable: the cache may still have it.
  const std::string folder = url.starts_with("file://") ? url.substr(7) : url;
  const bool missing_folder = folder.starts_with("/") && !fs::exists(folder, ec);
  auto fetched = missing_folder ? std::expected<git::FetchResult, git::Error>(std::unexpected(git::Error{
                                      git::ErrorKind::kUnreachable, "no repository at " + folder, folder}))
                                : mirrors_.fetch(url, fetch);
  if (!fetched) {
    const git::Error& error = fetched.error();
    const bool unreachable = error.kind == git::ErrorKind::kUnreachable || error.kind == git::ErrorKind::kTimeout;
    if (!unreachable)
      return std::unexpected("cannot fetch " + spec + " from " + resolution.url + ": " + error.to_string());
    if (!fs::exists(mirror / "HEAD", ec))
      return std::unexpected("cannot fetch " + spec + " from " + resolution.url + ": " + error.to_string() + "; " +
                             add_hint(ref));
    auto commit = commit_in(mirror, ref.ref);
    if (!commit)
      return std::unexpected("cannot reach " + resolution.url + " (" + error.to_string() + ") and the cache has " +
                             commit.error() + " of " + ref.repository() + "; " + add_hint(ref));
    resolution.commit = *commit;
    resolution.from_cache = true;
    resolution.problem = error.to_string();
    return resolution;
  }
  auto commit = commit_in(fetched->mirror, ref.ref);
  if (!commit) return std::unexpected(ref.repository() + " has " + commit.error() + " (" + resolution.url + ")");
  resolution.commit = *commit;
  return resolution;
}

std::expected<fs::path, std::string> ActionCache::tree(const ActionResolution& resolution) {
  const auto slash = resolution.repository.find('/');
  const std::string owner = resolution.repository.substr(0, slash);
  const std::string repo = slash == std::string::npos ? "" : resolution.repository.substr(slash + 1);
  if (!valid_name(owner) || !valid_name(repo) || !is_full_sha(resolution.commit))
    throw std::invalid_argument("ActionCache::tree: not a resolution: " + resolution.repository + "@" +
                                resolution.commit);
  const fs::path dest = trees_dir() / owner / repo / resolution.commit;
  // Held until the tree is stamped as used: a prune then keeps it for days, and the
  // run's recorded ref keeps it while the run is unfinished (action_cache_pruning.h).
  ActionCacheLock lock(options_.state_dir / "actions", ActionCacheLock::Mode::shared);
  std::error_code ec;
  if (fs::is_directory(dest, ec)) {  // complete: trees appear only by rename
    touch(dest);
    return dest;
  }

  fs::create_directories(dest.parent_path(), ec);
  const fs::path temp = trees_dir() / (".tmp-" + resolution.commit.substr(0, 12) + "-" + random_suffix());
  git::CheckoutOptions checkout;
  checkout.fetch_if_missing = false;  // resolve() fetched; the commit is in the mirror
  auto written = mirrors_.checkout(action_repository_url(options_.source, owner, repo), resolution.commit, temp,
                                   checkout);
  if (!written)
    return std::unexpected("cannot check out " + resolution.repository + " at " + resolution.commit + ": " +
                           written.error().to_string());
  // Jobs get the files only: the .git would point at the mirror, which they cannot see.
  fs::remove_all(temp / ".git", ec);
  fs::rename(temp, dest, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    // Another run or process put the same tree in place first: use theirs.
    if (!fs::is_directory(dest, ignored))
      return std::unexpected("cannot move the tree of " + resolution.repository + " into " + dest.string() + ": " +
                             ec.message());
  }
  touch(dest);
  return dest;
}

std::vector<CachedRepository> ActionCache::list() {
  std::vector<CachedRepository> out;
  for (const fs::path& owner_dir : subfolders(trees_dir())) {
    for (const fs::path& repo_dir : subfolders(owner_dir)) {
      CachedRepository entry;
      const std::string owner = owner_dir.filename().string(), repo = repo_dir.filename().string();
      entry.repository = owner + "/" + repo;
      const std::string url = action_repository_url(options_.source, owner, repo);
      entry.url = git::redact_url(url);
      std::set<std::string> trees;
      for (const fs::path& tree : subfolders(repo_dir))
        if (is_full_sha(tree.filename().string())) trees.insert(tree.filename().string());
      entry.trees.assign(trees.begin(), trees.end());
      const fs::path mirror = mirrors_.mirror_path(url);
      std::error_code ec;
      entry.mirrored = fs::exists(mirror / "HEAD", ec);
      if (entry.mirrored)
        if (auto refs = git::list_refs(mirror))
          for (const auto& ref : *refs) entry.refs.push_back({ref.name, ref.commit, trees.contains(ref.commit)});
      out.push_back(std::move(entry));
    }
  }
  return out;
}

// ---- RunActionSource ----

RunActionSource::RunActionSource(ActionCache& cache, std::optional<git::Credentials> credentials)
    : cache_(cache), credentials_(std::move(credentials)) {}

void RunActionSource::on_resolved(std::function<void(const ActionResolution&)> callback) {
  std::lock_guard lock(mu_);
  on_resolved_ = std::move(callback);
}

std::vector<ActionResolution> RunActionSource::resolutions() const {
  std::lock_guard lock(mu_);
  return resolutions_;
}

std::expected<FetchedRepository, std::string> RunActionSource::fetch(const scheduler::UsesRef& ref) {
  if (ref.kind != scheduler::UsesRef::Kind::remote)
    return std::unexpected("'" + ref.name() + "' is not a remote action");
  const std::string key = lower(ref.repository()) + "@" + ref.ref;
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mu_);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  // Jobs asking for another ref go on; those asking for this one wait for the first.
  std::lock_guard lock(entry->mu);
  if (entry->done) return entry->result;
  entry->done = true;
  auto resolved = cache_.resolve(ref, credentials_ ? &*credentials_ : nullptr);
  if (!resolved) return entry->result = std::unexpected(resolved.error());
  auto root = cache_.tree(*resolved);
  if (!root) return entry->result = std::unexpected(root.error());
  entry->result = FetchedRepository{*root, resolved->commit};
  std::function<void(const ActionResolution&)> callback;
  {
    std::lock_guard records(mu_);
    resolutions_.push_back(*resolved);
    callback = on_resolved_;
  }
  if (callback) callback(*resolved);
  return entry->result;
}

}  // namespace sandci::agent
