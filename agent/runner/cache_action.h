#pragma once
// actions/cache, actions/cache/restore and actions/cache/save, done by the runner
// over a CacheStore on the host, as GitHub's actions/cache@v4 behaves:
//   actions/cache          restores (outputs cache-hit), and at the end of the job,
//                          when every step succeeded and the key was not an exact
//                          hit, saves (a post step)
//   actions/cache/restore  restores only (cache-hit, cache-primary-key, cache-matched-key)
//   actions/cache/save     saves when it runs
// Inputs: key, path (one per line, globs, `!` excludes), restore-keys (one per
// line), fail-on-cache-miss, lookup-only; enableCrossOsArchive and
// upload-chunk-size are accepted and ignored.
//
// Paths: relative ones are in the workspace; `~` is $HOME (/root in the sandbox);
// absolute paths may name /workspace, /root, /home, /opt or /tmp and what is
// beneath them (so GitHub's `/home/runner/.cargo` works when the job writes
// there). The rest of a sandbox is the image's, which a cache has no business
// replacing.
// Files are copied out of the sandbox through tar and checked as artifacts are: no
// symbolic link leading out of the saved folders, no device files (skipped), no
// `..` out of the allowed folders.
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runner/builtin_step.h"
#include "agent/runner/cache_store.h"

namespace sandci::agent {

// True for the three cache actions ("actions/cache", lower case, no @ref).
bool is_cache_action(std::string_view action);

// One `path:` line mapped into the sandbox, relative to its root:
// "node_modules" -> "workspace/node_modules", "~/.npm" -> "root/.npm",
// "/tmp/x/**" -> "tmp/x/**", "!dist/*.map" -> "!workspace/dist/*.map". Errors name
// the line: a path outside /workspace, ~, /home, /opt and /tmp, or `..` leaving
// them.
std::expected<std::string, std::string> cache_path_in_sandbox(std::string_view line);

// The entry version for a `path:` input: entries saved with other paths never match.
std::string cache_version(std::string_view path_input);

// The cache steps of one job; keeps what the post step of actions/cache needs.
class CacheSteps {
 public:
  // `store` may be null: the cache actions then miss (a warning says why) and
  // never save.
  CacheSteps(CacheStore* store, CacheScope scope);

  // Runs a cache action's main step.
  scheduler::StepOutcome run(std::string_view action, const BuiltinStep& step);

  // The post steps of actions/cache, last one first: each saves its key unless
  // the job failed (`job_succeeded` false), the key was an exact hit, or it was a
  // lookup-only step. A failed save is a warning (logged), never a failure.
  void run_post(bool job_succeeded, const BuiltinStep& post);

 private:
  struct Pending {
    std::string name;  // the step's display name
    std::string key;
    std::string path_input;
  };
  scheduler::StepOutcome restore(std::string_view action, const BuiltinStep& step);
  scheduler::StepOutcome save(const BuiltinStep& step, const std::string& key, const std::string& path_input);

  CacheStore* store_;
  CacheScope scope_;
  std::vector<Pending> pending_;
};

}  // namespace sandci::agent
