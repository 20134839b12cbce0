#pragma once
// Writing one commit of a mirror into a folder: the files, an index, and a `.git`
// whose HEAD is detached at the commit and whose objects are the mirror's (through
// objects/info/alternates), so `git log`, `git status` and `git describe` work there.
#include <git2.h>

#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "git/error.h"

namespace sandci::git {

struct SubmoduleRef {
  std::string path;  // relative to the checkout
  std::string url;   // as written in .gitmodules (may be relative)
  std::string sha;   // the gitlink recorded in the commit
};

struct WrittenCheckout {
  std::vector<SubmoduleRef> submodules;  // every gitlink with a .gitmodules entry
};

// True when the mirror exists and holds `oid` as a commit.
bool commit_in_mirror(const std::filesystem::path& mirror, const git_oid& oid);

// `dest` must not exist or be an empty folder. On failure `dest` is left as it was
// found (removed, or emptied).
std::expected<WrittenCheckout, Error> write_checkout(const std::filesystem::path& mirror,
                                                     const git_oid& oid,
                                                     const std::filesystem::path& dest,
                                                     const std::string& redacted_url);

}  // namespace sandci::git
