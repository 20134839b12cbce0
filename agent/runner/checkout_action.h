#pragma once
// actions/checkout, done by the runner. The run's commit is checked out at
// /workspace before the job starts, so the step without inputs does nothing (the
// fast path). With inputs, the checkout is written on the host by a
// CheckoutFunction the caller (daemon or `sandci run`) provides, which knows where
// repositories come from and with which credentials; the runner only copies the
// result into the sandbox. Credentials never enter the sandbox.
//
// Inputs: path (under the workspace), ref (branch, tag, full ref or SHA),
// repository (owner/name), fetch-depth (default 1; 0 = the whole history),
// submodules (true or recursive: both recursive here), clean (default true: the
// folder is emptied first). lfs: true is refused (LFS objects need the network and
// an LFS server). token, ssh-key, ssh-known-hosts, ssh-strict, ssh-user,
// persist-credentials, set-safe-directory, show-progress, fetch-tags, filter and
// sparse-checkout are noted and ignored (the whole tree is checked out).
#include <expected>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agent/runner/builtin_step.h"

namespace sandci::agent {

struct CheckoutRequest {
  std::string repository;  // owner/name, never empty
  std::string ref;         // as written; empty: the run's commit (own repository) or the default branch
  bool submodules = false;
  int fetch_depth = 1;  // commits of history the checkout shows; 0: all
  std::filesystem::path dest;  // an empty host folder to write the checkout into
  // Object folders the sandbox already mounts read-only (the run's alternates): a
  // checkout may point at them; anything else it needs must be copied into it.
  std::vector<std::filesystem::path> mounted_object_dirs;
};

struct CheckedOut {
  std::string sha;
};

// Writes a checkout on the host; errors are sentences for the job's log (no secret).
using CheckoutFunction = std::function<std::expected<CheckedOut, std::string>(const CheckoutRequest&)>;

// The run's own checkout, as the step sees it.
struct CheckoutSource {
  std::string repository;  // owner/name of the run
  std::string sha;         // the run's commit
  std::vector<std::filesystem::path> object_dirs;  // mounted read-only in the sandbox
  CheckoutFunction checkout;  // may be empty: then only the fast path works
};

// Runs one actions/checkout step. Errors (bad inputs, an unknown repository or
// ref, lfs) fail the step with a message naming the input.
scheduler::StepOutcome run_checkout(const BuiltinStep& step, const CheckoutSource& source);

// Limits the history a checkout at `dir` (with a .git) shows to `depth` commits
// from `sha` by writing .git/shallow, as a shallow clone has it; depth 0 removes
// the limit. The objects stay where they are.
std::expected<void, std::string> limit_history(const std::filesystem::path& dir, const std::string& sha, int depth);

// Copies into the checkout at `dir` the objects `depth` commits of history from
// `sha` need (0: all), as one pack, and drops its alternates: for a checkout whose
// objects are not mounted in the sandbox.
std::expected<void, std::string> embed_objects(const std::filesystem::path& dir, const std::string& sha, int depth);

}  // namespace sandci::agent
