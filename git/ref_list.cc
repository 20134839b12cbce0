#include "git/ref_list.h"

#include <algorithm>

#include "git/git_handles.h"
#include "git/libgit2_init.h"

namespace sandci::git {

std::expected<std::vector<RefEntry>, Error> list_refs(const std::filesystem::path& repo_path) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, repo_path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    return std::unexpected(Error{ErrorKind::kRepoNotFound,
                                 std::string("not a git repository: ") + last_git_message(), repo_path.string()});
  RepoPtr repo(raw);
  git_reference_iterator* raw_iter = nullptr;
  if (git_reference_iterator_new(&raw_iter, repo.get()) != 0)
    return std::unexpected(Error{ErrorKind::kOther, last_git_message(), repo_path.string()});
  RefIterPtr iter(raw_iter);
  std::vector<RefEntry> refs;
  git_reference* raw_ref = nullptr;
  while (git_reference_next(&raw_ref, iter.get()) == 0) {
    RefPtr ref(raw_ref);
    const std::string name = git_reference_name(ref.get());
    if (!name.starts_with("refs/heads/") && !name.starts_with("refs/tags/")) continue;
    git_object* object = nullptr;
    if (git_reference_peel(&object, ref.get(), GIT_OBJECT_COMMIT) != 0) continue;  // a tag of a tree, say
    char hex[GIT_OID_HEXSZ + 1] = {};
    git_oid_tostr(hex, sizeof hex, git_object_id(object));
    git_object_free(object);
    refs.push_back({name, hex});
  }
  std::sort(refs.begin(), refs.end(), [](const RefEntry& a, const RefEntry& b) { return a.name < b.name; });
  return refs;
}

}  // namespace sandci::git
