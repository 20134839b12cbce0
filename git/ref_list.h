#pragma once
// The branches and tags of a repository, for tools that show what a mirror holds.
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "git/error.h"

namespace sandci::git {

struct RefEntry {
  std::string name;    // "refs/heads/main", "refs/tags/v1"
  std::string commit;  // 40 hex: the commit the ref points at (annotated tags peeled)
};

// Every branch and tag of the repository at `repo` (bare or not) that leads to a
// commit, sorted by name. Errors: kRepoNotFound when `repo` is no repository.
std::expected<std::vector<RefEntry>, Error> list_refs(const std::filesystem::path& repo);

}  // namespace sandci::git
