#include "git/local_repo.h"

#include <git2.h>

#include <algorithm>
#include <memory>

#include "git/git_handles.h"
#include "git/libgit2_init.h"

namespace sandci::git {
namespace {

Error last_error(ErrorKind kind, std::string what, const std::filesystem::path& path) {
  const git_error* e = git_error_last();
  if (e && e->message) what += ": " + std::string(e->message);
  return Error{kind, std::move(what), path.string()};
}

}  // namespace

std::expected<LocalHead, Error> read_local_head(const std::filesystem::path& path) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, path.c_str(), 0, nullptr) != 0)
    return std::unexpected(last_error(ErrorKind::kRepoNotFound, "not a git repository", path));
  std::unique_ptr<git_repository, decltype(&git_repository_free)> repo(raw, git_repository_free);
  if (git_repository_is_bare(repo.get()))
    return std::unexpected(
        Error{ErrorKind::kInvalidArgument, "a bare repository has no working tree", path.string()});

  LocalHead head;
  head.workdir = std::filesystem::path(git_repository_workdir(repo.get())).lexically_normal();
  if (!head.workdir.has_filename()) head.workdir = head.workdir.parent_path();
  git_reference* ref_raw = nullptr;
  if (git_repository_head(&ref_raw, repo.get()) != 0)
    return std::unexpected(last_error(ErrorKind::kShaNotFound, "HEAD has no commit yet", path));
  std::unique_ptr<git_reference, decltype(&git_reference_free)> ref(ref_raw, git_reference_free);
  const git_oid* oid = git_reference_target(ref.get());
  if (!oid) return std::unexpected(last_error(ErrorKind::kShaNotFound, "HEAD is not a commit", path));
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, oid);
  head.sha = hex;
  if (!git_repository_head_detached(repo.get())) head.ref = git_reference_name(ref.get());
  git_remote* origin = nullptr;
  if (git_remote_lookup(&origin, repo.get(), "origin") == 0) {
    if (const char* url = git_remote_url(origin)) head.origin_url = url;
    git_remote_free(origin);
  } else {
    git_error_clear();  // no origin is normal for a local repository
  }
  return head;
}

std::expected<std::string, Error> resolve_commit(const std::filesystem::path& path, const std::string& ref) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, path.c_str()) != 0 &&
      git_repository_open_ext(&raw, path.c_str(), 0, nullptr) != 0)
    return std::unexpected(last_error(ErrorKind::kRepoNotFound, "not a git repository", path));
  std::unique_ptr<git_repository, decltype(&git_repository_free)> repo(raw, git_repository_free);
  // A short name is tried as a branch first, then as a tag, as people mean it.
  for (const std::string& spec : {ref, "refs/heads/" + ref, "refs/tags/" + ref}) {
    git_object* object = nullptr;
    if (git_revparse_single(&object, repo.get(), (spec + "^{commit}").c_str()) != 0) continue;
    char hex[GIT_OID_HEXSZ + 1] = {};
    git_oid_tostr(hex, sizeof hex, git_object_id(object));
    git_object_free(object);
    return std::string(hex);
  }
  return std::unexpected(last_error(ErrorKind::kShaNotFound, "no commit named '" + ref + "'", path));
}

std::expected<std::optional<std::vector<std::pair<std::string, std::string>>>, Error> read_folder_at(
    const std::filesystem::path& path, const std::string& sha, const std::string& folder, std::size_t max_bytes) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, path.c_str(), 0, nullptr) != 0)
    return std::unexpected(last_error(ErrorKind::kRepoNotFound, "not a git repository", path));
  RepoPtr repo(raw);
  git_oid oid;
  if (git_oid_fromstrn(&oid, sha.data(), sha.size()) != 0)
    return std::unexpected(Error{ErrorKind::kInvalidArgument, "not a commit id: '" + sha + "'", path.string()});
  git_commit* commit_raw = nullptr;
  if (git_commit_lookup(&commit_raw, repo.get(), &oid) != 0)
    return std::unexpected(last_error(ErrorKind::kShaNotFound, "no commit " + sha, path));
  CommitPtr commit(commit_raw);
  git_tree* root_raw = nullptr;
  if (git_commit_tree(&root_raw, commit.get()) != 0)
    return std::unexpected(last_error(ErrorKind::kIo, "cannot read the tree of " + sha, path));
  TreePtr root(root_raw);
  git_tree_entry* entry_raw = nullptr;
  if (git_tree_entry_bypath(&entry_raw, root.get(), folder.c_str()) != 0) {
    git_error_clear();
    return std::nullopt;
  }
  TreeEntryPtr entry(entry_raw);
  if (git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) return std::nullopt;
  git_tree* tree_raw = nullptr;
  if (git_tree_lookup(&tree_raw, repo.get(), git_tree_entry_id(entry.get())) != 0)
    return std::unexpected(last_error(ErrorKind::kIo, "cannot read " + folder + " of " + sha, path));
  TreePtr tree(tree_raw);
  std::vector<std::pair<std::string, std::string>> files;
  for (std::size_t i = 0; i < git_tree_entrycount(tree.get()); ++i) {
    const git_tree_entry* file = git_tree_entry_byindex(tree.get(), i);
    const git_filemode_t mode = git_tree_entry_filemode(file);
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) continue;
    git_blob* blob_raw = nullptr;
    if (git_blob_lookup(&blob_raw, repo.get(), git_tree_entry_id(file)) != 0)
      return std::unexpected(last_error(ErrorKind::kIo, "cannot read " + folder + "/" + git_tree_entry_name(file), path));
    std::unique_ptr<git_blob, GitDeleter<git_blob, git_blob_free>> blob(blob_raw);
    const auto size = static_cast<std::size_t>(git_blob_rawsize(blob.get()));
    if (size > max_bytes) continue;
    files.emplace_back(git_tree_entry_name(file),
                       std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())), size));
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace sandci::git
