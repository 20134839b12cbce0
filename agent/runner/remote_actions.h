#pragma once
// Remote actions and reusable workflows (`uses: owner/repo[/path]@ref`), fetched by
// the agent, never by a job (jobs have no network), through a mirror cache kept in
// the agent's state folder:
//
//   <state>/actions/mirrors/<name>/             bare mirror of each action repository
//   <state>/actions/trees/<owner>/<repo>/<sha>/ its files at one commit (no .git), shared
//                                               by every run; mounted read-only in jobs
//   <state>/actions/trees/.tmp-*                a tree being written (renamed into
//                                               place when complete, so a half-written
//                                               tree is never used)
//   <state>/actions/prune.lock                  flock()ed shared by each use, exclusively
//                                               by a prune (action_cache_pruning.h)
//   <state>/actions/.trash-*                    what a prune is deleting
//
// Each use sets the mirror's or tree's modification time to now: retention removes
// what was not used for retention.actions_days (ActionCache::prune).
//
// ActionCache is the shared, thread-safe cache (one per agent or per `sandci run`);
// RunActionSource is the ActionSource of one run: it remembers each ref's commit so
// that every job of the run sees the same one, even if the tag moves meanwhile, and
// keeps the list of what it resolved for the run's record.
#include <chrono>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runner/action_cache_pruning.h"
#include "agent/runner/action_source.h"
#include "git/credentials.h"
#include "git/mirror_cache.h"
#include "scheduler/uses_ref.h"

namespace sandci::agent {

// The public GitHub: where `uses: actions/checkout@v4` comes from unless told otherwise.
inline constexpr std::string_view kDefaultActionsSource = "https://github.com";

// The URL `owner/repo` is fetched from: "<source>/<owner>/<repo>" (the owner is kept,
// so a forge's mirror organisation "https://git.example.org/mirrors" serves
// ".../mirrors/actions/checkout"); a source that names "{owner}" and/or "{repo}" has
// them replaced instead ("https://git.example.org/mirrors/{owner}-{repo}").
std::string action_repository_url(std::string_view source, std::string_view owner, std::string_view repo);

// What is wrong with `source` as an actions source (not an http(s), ssh, git or file
// URL; credentials in it; a query), or nullopt when it is usable.
std::optional<std::string> actions_source_problem(std::string_view source);

// "owner/repo@ref" or "owner/repo/path@ref" as `sandci actions add` takes it. Errors
// say what is wrong ("'acme' must be owner/repo@ref, like actions/checkout@v4").
std::expected<scheduler::UsesRef, std::string> parse_action_spec(std::string_view text);

struct ActionsOptions {
  std::filesystem::path state_dir;  // the agent's state folder; the cache is <state>/actions
  std::string source = std::string(kDefaultActionsSource);
  git::Credentials credentials;  // for the source; empty: anonymous
  std::chrono::milliseconds fetch_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(20)};
};

// One ref resolved to a commit: what a run records for each action it used.
struct ActionResolution {
  std::string repository;  // owner/repo as written
  std::string ref;         // as written: tag, branch or commit
  std::string commit;      // 40 hex
  std::string url;         // the source URL, without credentials
  // The source could not be reached and the cached ref was used; `problem` says why.
  bool from_cache = false;
  std::string problem;
};

// One ref of a cached repository, for `sandci actions list`.
struct CachedRef {
  std::string name;    // "refs/tags/v1", "refs/heads/main"
  std::string commit;  // 40 hex
  bool tree = false;   // its files are checked out (ready for jobs)
};

struct CachedRepository {
  std::string repository;  // owner/repo
  std::string url;         // without credentials
  bool mirrored = false;   // a mirror from this source exists
  std::vector<CachedRef> refs;          // branches and tags, sorted by name
  std::vector<std::string> trees;       // commits checked out, sorted
};

class ActionCache {
 public:
  explicit ActionCache(ActionsOptions options);
  ActionCache(const ActionCache&) = delete;
  ActionCache& operator=(const ActionCache&) = delete;

  const ActionsOptions& options() const { return options_; }
  std::filesystem::path trees_dir() const { return options_.state_dir / "actions" / "trees"; }

  // Brings the repository `ref` names up to date from the source and resolves its
  // ref (tag, then branch, then full or abbreviated commit) to a commit. A full
  // commit already in the mirror needs no fetch. When the source cannot be reached
  // (connection refused, DNS, timeout) but the mirror holds the ref, the mirror's
  // answer comes back with from_cache set. `credentials` replaces the options' ones
  // when given. Errors are ready to show and name `sandci actions add` when the
  // cache cannot help. Thread-safe (fetches of one repository are serialized).
  std::expected<ActionResolution, std::string> resolve(const scheduler::UsesRef& ref,
                                                       const git::Credentials* credentials = nullptr);

  // The repository's files at `resolution.commit`, written once into
  // trees/<owner>/<repo>/<commit> and shared afterwards. Thread-safe and safe across
  // processes: each writer fills its own temporary folder and renames it into place.
  std::expected<std::filesystem::path, std::string> tree(const ActionResolution& resolution);

  // Every repository the cache knows (it was resolved once), with its refs as the
  // mirror of the configured source has them. Sorted by repository.
  std::vector<CachedRepository> list();

  // Removes the trees and mirrors plan_action_pruning picks (not used for
  // max_unused_ms; `in_use`: the actions of unfinished runs, `recorded`: the newest
  // recorded use of each; their mirror fields are filled here), trees left
  // half-written by a dead writer, and empty repository folders whose mirror is
  // gone. Deferred (nothing done) while a resolution or a tree is under way in any
  // process. Thread-safe; see action_cache_pruning.h.
  ActionPruneReport prune(std::vector<ActionUse> in_use, std::vector<ActionUse> recorded,
                          std::int64_t max_unused_ms, std::int64_t now_ms);

 private:
  std::string url_of(const scheduler::UsesRef& ref) const;
  std::expected<ActionResolution, std::string> resolve_locked(const scheduler::UsesRef& ref,
                                                              const git::Credentials* credentials);

  ActionsOptions options_;
  git::MirrorCache mirrors_;
};

// The ActionSource of one run over a shared ActionCache.
class RunActionSource final : public ActionSource {
 public:
  // `credentials`, when given, replace the cache's for this run's fetches.
  explicit RunActionSource(ActionCache& cache, std::optional<git::Credentials> credentials = std::nullopt);

  // The same ref (owner/repo@ref, owner and repo compared without case) gives the
  // same commit for the whole run; the first caller fetches, the others wait.
  // A failure is remembered too: a run does not fetch an unknown tag once per job.
  std::expected<FetchedRepository, std::string> fetch(const scheduler::UsesRef& ref) override;

  // Called once per new resolution, on the fetching thread (log it, store it).
  void on_resolved(std::function<void(const ActionResolution&)> callback);

  // What this run resolved, in the order first asked.
  std::vector<ActionResolution> resolutions() const;

 private:
  struct Entry {
    std::mutex mu;
    bool done = false;
    std::expected<FetchedRepository, std::string> result = std::unexpected(std::string());
  };

  ActionCache& cache_;
  std::optional<git::Credentials> credentials_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  std::vector<ActionResolution> resolutions_;
  std::function<void(const ActionResolution&)> on_resolved_;
};

}  // namespace sandci::agent
