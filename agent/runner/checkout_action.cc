#include "agent/runner/checkout_action.h"

#include <git2.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <map>
#include <set>

#include "agent/runner/artifacts.h"
#include "git/git_handles.h"
#include "git/libgit2_init.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string git_message() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

struct History {
  std::vector<git_oid> commits;  // those the checkout shows
  std::vector<git_oid> shallow;  // the oldest of them, whose parents are cut off
};

bool oid_less(const git_oid& a, const git_oid& b) { return git_oid_cmp(&a, &b) < 0; }

// The commits `depth` generations from `sha` (0: all), breadth first.
std::expected<History, std::string> history_of(git_repository* repo, const std::string& sha, int depth) {
  git_oid start;
  if (git_oid_fromstr(&start, sha.c_str()) != 0) return std::unexpected("not a commit id: " + sha);
  History history;
  std::map<git_oid, int, decltype(&oid_less)> distance(&oid_less);
  std::deque<git_oid> todo{start};
  distance[start] = 0;
  while (!todo.empty()) {
    const git_oid id = todo.front();
    todo.pop_front();
    git_commit* raw = nullptr;
    if (git_commit_lookup(&raw, repo, &id) != 0) {
      // A shallow mirror ends here: what git sees ends here too.
      history.shallow.push_back(id);
      continue;
    }
    git::CommitPtr commit(raw);
    history.commits.push_back(id);
    const int d = distance[id];
    if (depth > 0 && d == depth - 1) {
      if (git_commit_parentcount(commit.get()) > 0) history.shallow.push_back(id);
      continue;
    }
    for (unsigned i = 0; i < git_commit_parentcount(commit.get()); ++i) {
      const git_oid* parent = git_commit_parent_id(commit.get(), i);
      if (distance.emplace(*parent, d + 1).second) todo.push_back(*parent);
    }
  }
  return history;
}

std::expected<git::RepoPtr, std::string> open_checkout(const fs::path& dir) {
  git::ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    return std::unexpected("cannot open the checkout " + dir.string() + ": " + git_message());
  return git::RepoPtr(raw);
}

// A relative path under the workspace, or an error naming the input.
std::expected<std::string, std::string> checkout_path(const std::string& input) {
  auto resolved = resolve_download_path(input);
  if (!resolved) return std::unexpected("path '" + input + "': " + resolved.error());
  return *resolved;
}

std::expected<int, std::string> fetch_depth(const std::string& input) {
  if (input.empty()) return 1;
  int value = 0;
  for (char c : input) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || value > 1000000)
      return std::unexpected("fetch-depth must be a number (0 for the whole history), not '" + input + "'");
    value = value * 10 + (c - '0');
  }
  return value;
}

std::expected<bool, std::string> submodules_input(const std::string& input) {
  if (input.empty() || input == "false" || input == "False") return false;
  if (input == "true" || input == "True" || input == "recursive") return true;
  return std::unexpected("submodules must be true, false or recursive, not '" + input + "'");
}

// Empties a folder of the sandbox (creating it when missing), as `clean: true` asks.
std::expected<void, std::string> clean_folder(const BuiltinStep& step, const std::string& dir) {
  sandbox::ExecRequest exec;
  exec.argv = {"/bin/sh", "-c",
               "mkdir -p \"$1\" && cd \"$1\" && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +", "sh", dir};
  std::string output;
  auto status = step.sandbox->exec(exec, [&](const sandbox::OutputLine& line) { output += line.text + "\n"; });
  if (!status.success()) return std::unexpected("cannot clean " + dir + ": " + output);
  return {};
}

}  // namespace

std::expected<void, std::string> limit_history(const fs::path& dir, const std::string& sha, int depth) {
  const fs::path file = dir / ".git" / "shallow";
  std::error_code ec;
  if (depth == 0) {
    fs::remove(file, ec);
    return {};
  }
  auto repo = open_checkout(dir);
  if (!repo) return std::unexpected(repo.error());
  auto history = history_of(repo->get(), sha, depth);
  if (!history) return std::unexpected(history.error());
  std::ofstream out(file, std::ios::trunc);
  for (const auto& id : history->shallow) {
    char hex[GIT_OID_HEXSZ + 1] = {};
    git_oid_tostr(hex, sizeof hex, &id);
    out << hex << "\n";
  }
  if (!out.flush()) return std::unexpected("cannot write " + file.string());
  if (history->shallow.empty()) fs::remove(file, ec);
  return {};
}

std::expected<void, std::string> embed_objects(const fs::path& dir, const std::string& sha, int depth) {
  auto repo = open_checkout(dir);
  if (!repo) return std::unexpected(repo.error());
  auto history = history_of(repo->get(), sha, depth);
  if (!history) return std::unexpected(history.error());
  git_packbuilder* raw = nullptr;
  if (git_packbuilder_new(&raw, repo->get()) != 0) return std::unexpected("cannot pack objects: " + git_message());
  std::unique_ptr<git_packbuilder, decltype(&git_packbuilder_free)> pack(raw, git_packbuilder_free);
  for (const auto& id : history->commits)
    if (git_packbuilder_insert_commit(pack.get(), &id) != 0)
      return std::unexpected("cannot pack objects: " + git_message());
  const fs::path pack_dir = dir / ".git" / "objects" / "pack";
  std::error_code ec;
  fs::create_directories(pack_dir, ec);
  if (git_packbuilder_write(pack.get(), pack_dir.c_str(), 0, nullptr, nullptr) != 0)
    return std::unexpected("cannot write the pack: " + git_message());
  fs::remove(dir / ".git" / "objects" / "info" / "alternates", ec);
  return {};
}

scheduler::StepOutcome run_checkout(const BuiltinStep& step, const CheckoutSource& source) {
  for (const char* ignored : {"token", "ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user", "persist-credentials",
                              "set-safe-directory", "show-progress", "github-server-url"})
    if (!step.input(ignored).empty())
      step.log(std::string("note: '") + ignored +
               "' is ignored: sandci fetches on the host, and credentials never enter the sandbox");
  for (const char* ignored : {"fetch-tags", "filter", "sparse-checkout", "sparse-checkout-cone-mode"})
    if (!step.input(ignored).empty())
      step.log(std::string("note: '") + ignored + "' is ignored: the whole tree of the commit is checked out");
  auto lfs = boolean_input(step, "lfs", false);
  if (!lfs) return step.fail("checkout: " + lfs.error());
  if (*lfs)
    return step.fail("checkout: lfs: true is not supported: LFS objects need the network and an LFS server, "
                     "and jobs have neither");
  auto path = checkout_path(step.input("path"));
  if (!path) return step.fail("checkout: " + path.error());
  auto depth = fetch_depth(step.input("fetch-depth"));
  if (!depth) return step.fail("checkout: " + depth.error());
  auto submodules = submodules_input(step.input("submodules"));
  if (!submodules) return step.fail("checkout: " + submodules.error());
  auto clean = boolean_input(step, "clean", true);
  if (!clean) return step.fail("checkout: " + clean.error());

  std::string repository = step.input("repository");
  const bool own = repository.empty() || lower(repository) == lower(source.repository);
  if (own) repository = source.repository;
  const std::string ref = step.input("ref");
  const bool own_commit = own && (ref.empty() || ref == source.sha);
  // The fast path: the run's commit is at /workspace already, with its whole history.
  if (own_commit && path->empty() && !*submodules) {
    step.log("the commit is already checked out at /workspace");
    return {};
  }
  if (!source.checkout)
    return step.fail("checkout: this agent cannot check out " +
                     (own ? "another ref or folder" : "another repository (" + repository + ")"));

  const fs::path host = step.scratch("checkout");
  CheckoutRequest request;
  request.repository = repository;
  request.ref = own_commit ? source.sha : ref;
  request.submodules = *submodules;
  request.fetch_depth = *depth;
  request.dest = host / "checkout";
  request.mounted_object_dirs = source.object_dirs;
  auto checked_out = source.checkout(request);
  if (!checked_out) return step.fail("checkout: " + checked_out.error());
  if (auto limited = limit_history(request.dest, checked_out->sha, *depth); !limited)
    step.log("warning: " + limited.error());

  const std::string target = path->empty() ? "/workspace" : "/workspace/" + *path;
  if (*clean) {
    if (auto cleaned = clean_folder(step, target); !cleaned) return step.fail("checkout: " + cleaned.error());
  }
  auto copied = step.sandbox->copy_in(request.dest.string(), target);
  std::error_code ec;
  fs::remove_all(host, ec);
  if (!copied) return step.fail("checkout: " + copied.error().message);
  step.log("checked out " + repository + " at " + checked_out->sha.substr(0, 12) +
           (ref.empty() ? "" : " (" + ref + ")") + " into " + target +
           (*depth == 0 ? ", whole history" : ", history of " + std::to_string(*depth) + " commit(s)"));
  return {};
}

}  // namespace sandci::agent
