#pragma once
// What `sandci run` needs to know about the repository it was pointed at.
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "git/error.h"

namespace sandci::git {

struct LocalHead {
  std::filesystem::path workdir;  // the repository's working tree (top level)
  std::string sha;                // the commit HEAD points at (40 hex)
  std::string ref;                // "refs/heads/main"; empty when HEAD is detached
  std::string origin_url;         // the `origin` remote's URL; empty without one
};

// Opens the repository containing `path` (searching upwards, as git does) and
// reads HEAD. Errors: kRepoNotFound when `path` is in no repository, kShaNotFound
// when HEAD has no commit yet.
std::expected<LocalHead, Error> read_local_head(const std::filesystem::path& path);

// The commit `ref` names in the repository at `repo` (bare or not): a full ref
// ("refs/heads/main"), a branch or tag name, or a SHA. Errors: kRepoNotFound,
// kShaNotFound when nothing by that name is a commit.
std::expected<std::string, Error> resolve_commit(const std::filesystem::path& repo, const std::string& ref);

// The files directly in `folder` (a path relative to the top, "a/b") of commit
// `sha` in the repository containing `repo`, as (name, content) sorted by name:
// regular files only (a symbolic link or a sub-folder is left out), each read
// only when at most `max_bytes` (a bigger one is left out). nullopt when the
// commit has no such folder. Reads the objects alone: no working tree is touched.
std::expected<std::optional<std::vector<std::pair<std::string, std::string>>>, Error> read_folder_at(
    const std::filesystem::path& repo, const std::string& sha, const std::string& folder, std::size_t max_bytes);

}  // namespace sandci::git
