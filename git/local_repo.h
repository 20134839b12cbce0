#pragma once
// What `sandci run` needs to know about the repository it was pointed at.
#include <expected>
#include <filesystem>
#include <string>

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

}  // namespace sandci::git
