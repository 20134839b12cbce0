#pragma once
// unique_ptr owners for libgit2 objects, so early returns free them.
#include <git2.h>

#include <memory>

namespace sandci::git {

template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};

using RepoPtr = std::unique_ptr<git_repository, GitDeleter<git_repository, git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitDeleter<git_remote, git_remote_free>>;
using CommitPtr = std::unique_ptr<git_commit, GitDeleter<git_commit, git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, GitDeleter<git_tree, git_tree_free>>;
using TreeEntryPtr =
    std::unique_ptr<git_tree_entry, GitDeleter<git_tree_entry, git_tree_entry_free>>;
using IndexPtr = std::unique_ptr<git_index, GitDeleter<git_index, git_index_free>>;
using OdbPtr = std::unique_ptr<git_odb, GitDeleter<git_odb, git_odb_free>>;
using ConfigPtr = std::unique_ptr<git_config, GitDeleter<git_config, git_config_free>>;
using RefPtr = std::unique_ptr<git_reference, GitDeleter<git_reference, git_reference_free>>;
using RefIterPtr = std::unique_ptr<git_reference_iterator,
                                   GitDeleter<git_reference_iterator, git_reference_iterator_free>>;

// The message of the last libgit2 error on this thread, or `fallback`.
inline const char* last_git_message(const char* fallback = "unknown libgit2 error") {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : fallback;
}

}  // namespace sandci::git
