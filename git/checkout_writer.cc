#include "git/checkout_writer.h"

#include <sys/stat.h>

#include <fstream>
#include <map>

#include "git/git_handles.h"

namespace sandci::git {

namespace fs = std::filesystem;

namespace {

bool write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

// The smallest `.git` git accepts, HEAD detached, objects borrowed from the mirror.
bool write_git_dir(const fs::path& git_dir, const fs::path& mirror, const std::string& sha) {
  std::error_code ec;
  for (const char* sub : {"objects/info", "objects/pack", "refs/heads", "refs/tags"}) {
    fs::create_directories(git_dir / sub, ec);
    if (ec) return false;
  }
  fs::path objects = fs::absolute(mirror / "objects", ec);
  return write_file(git_dir / "HEAD", sha + "\n") &&
         write_file(git_dir / "config",
                    "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n"
                    "\tbare = false\n\tlogallrefupdates = false\n") &&
         write_file(git_dir / "objects/info/alternates", objects.string() + "\n");
}

std::expected<std::vector<SubmoduleRef>, std::string> read_submodules(const fs::path& dest,
                                                                     git_tree* tree) {
  std::vector<SubmoduleRef> out;
  std::error_code ec;
  if (!fs::exists(dest / ".gitmodules", ec)) return out;
  git_config* raw_cfg = nullptr;
  if (git_config_open_ondisk(&raw_cfg, (dest / ".gitmodules").c_str()) != 0) {
    return std::unexpected(std::string("cannot read .gitmodules: ") + last_git_message());
  }
  ConfigPtr cfg(raw_cfg);
  struct Entry {
    std::string path, url;
  };
  std::map<std::string, Entry> by_name;
  git_config_foreach_match(
      cfg.get(), "^submodule\\..*\\.(path|url)$",
      [](const git_config_entry* e, void* payload) {
        auto& map = *static_cast<std::map<std::string, Entry>*>(payload);
        std::string key = e->name;
        auto last_dot = key.rfind('.');
        std::string name = key.substr(10, last_dot - 10);  // after "submodule."
        (key.substr(last_dot + 1) == "path" ? map[name].path : map[name].url) = e->value;
        return 0;
      },
      &by_name);
  for (const auto& [name, entry] : by_name) {
    if (entry.path.empty() || entry.url.empty()) continue;
    git_tree_entry* raw_entry = nullptr;
    if (git_tree_entry_bypath(&raw_entry, tree, entry.path.c_str()) != 0) continue;
    TreeEntryPtr tree_entry(raw_entry);
    if (git_tree_entry_filemode(tree_entry.get()) != GIT_FILEMODE_COMMIT) continue;
    // A path escaping the checkout would let a repository write anywhere.
    fs::path rel = fs::path(entry.path).lexically_normal();
    if (rel.is_absolute() || rel.empty() || *rel.begin() == "..") {
      return std::unexpected("submodule path escapes the checkout: " + entry.path);
    }
    char hex[GIT_OID_HEXSZ + 1] = {};
    git_oid_tostr(hex, sizeof hex, git_tree_entry_id(tree_entry.get()));
    out.push_back({rel.string(), entry.url, hex});
  }
  return out;
}

// The index git would have written: every tree entry with the stat data of the file
// just written, so `git status` in the checkout is fast and clean.
bool write_index(git_repository* repo, const git_oid& tree_id, const fs::path& dest) {
  git_index* raw_index = nullptr;
  if (git_repository_index(&raw_index, repo) != 0) return false;
  IndexPtr index(raw_index);
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo, &tree_id) != 0) return false;
  TreePtr tree(raw_tree);
  if (git_index_read_tree(index.get(), tree.get()) != 0) return false;
  std::string base = dest.string() + "/";
  for (size_t i = 0, n = git_index_entrycount(index.get()); i < n; ++i) {
    git_index_entry entry = *git_index_get_byindex(index.get(), i);
    struct stat st;
    if (lstat((base + entry.path).c_str(), &st) != 0) continue;  // gitlinks: empty folders
    entry.ctime = {static_cast<int32_t>(st.st_ctim.tv_sec), static_cast<uint32_t>(st.st_ctim.tv_nsec)};
    entry.mtime = {static_cast<int32_t>(st.st_mtim.tv_sec), static_cast<uint32_t>(st.st_mtim.tv_nsec)};
    entry.dev = static_cast<uint32_t>(st.st_dev);
    entry.ino = static_cast<uint32_t>(st.st_ino);
    entry.uid = st.st_uid;
    entry.gid = st.st_gid;
    entry.file_size = static_cast<uint32_t>(st.st_size);
    if (git_index_add(index.get(), &entry) != 0) return false;
  }
  return git_index_write(index.get()) == 0;
}

std::expected<WrittenCheckout, std::string> write_into(const fs::path& mirror, const git_oid& oid,
                                                       const fs::path& dest) {
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, &oid);
  if (!write_git_dir(dest / ".git", mirror, hex)) return std::unexpected("cannot write .git");

  // Files come straight from the bare mirror into `dest` (target_directory): about
  // twice as fast as a checkout in the new repository, where libgit2 also compares
  // against its work folder and reads objects through the alternates.
  git_repository* raw_mirror = nullptr;
  if (git_repository_open_bare(&raw_mirror, mirror.c_str()) != 0) {
    return std::unexpected(std::string("cannot open the mirror: ") + last_git_message());
  }
  RepoPtr mirror_repo(raw_mirror);
  git_commit* raw_commit = nullptr;
  if (git_commit_lookup(&raw_commit, mirror_repo.get(), &oid) != 0) {
    return std::unexpected(std::string("cannot read the commit: ") + last_git_message());
  }
  CommitPtr commit(raw_commit);
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit.get()) != 0) {
    return std::unexpected(std::string("cannot read the commit's tree: ") + last_git_message());
  }
  TreePtr tree(raw_tree);
  git_repository* raw_repo = nullptr;
  auto open_checkout = [&] {
    return git_repository_open_ext(&raw_repo, dest.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  };
  // libgit2 refuses target_directory checkouts of trees with submodules from a bare
  // repository; those take the slower checkout inside the new repository.
  bool has_submodules = git_tree_entry_byname(tree.get(), ".gitmodules") != nullptr;
  if (has_submodules) {
    if (open_checkout() != 0) {
      return std::unexpected(std::string("cannot open the new checkout: ") + last_git_message());
    }
    RepoPtr repo(raw_repo);
    git_tree* raw_own_tree = nullptr;
    if (git_tree_lookup(&raw_own_tree, repo.get(), git_tree_id(tree.get())) != 0) {
      return std::unexpected(std::string("cannot read the tree: ") + last_git_message());
    }
    TreePtr own_tree(raw_own_tree);
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    opts.checkout_strategy = GIT_CHECKOUT_FORCE;  // writes the index too
    if (git_checkout_tree(repo.get(), reinterpret_cast<git_object*>(own_tree.get()), &opts) != 0) {
      return std::unexpected(std::string("checkout failed: ") + last_git_message());
    }
  } else {
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    // The mirror has no index and must not get one: concurrent checkouts share it.
    opts.checkout_strategy =
        GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX | GIT_CHECKOUT_DONT_WRITE_INDEX;
    std::string target = dest.string();
    opts.target_directory = target.c_str();
    if (git_checkout_tree(mirror_repo.get(), reinterpret_cast<git_object*>(tree.get()), &opts) != 0) {
      return std::unexpected(std::string("checkout failed: ") + last_git_message());
    }
    if (open_checkout() != 0) {
      return std::unexpected(std::string("cannot open the new checkout: ") + last_git_message());
    }
    RepoPtr repo(raw_repo);
    if (!write_index(repo.get(), *git_tree_id(tree.get()), dest)) {
      return std::unexpected(std::string("cannot write the index: ") + last_git_message());
    }
  }
  auto subs = read_submodules(dest, tree.get());
  if (!subs) return std::unexpected(subs.error());
  return WrittenCheckout{std::move(*subs)};
}

}  // namespace

bool commit_in_mirror(const fs::path& mirror, const git_oid& oid) {
  git_repository* raw = nullptr;
  if (git_repository_open_bare(&raw, mirror.c_str()) != 0) return false;
  RepoPtr repo(raw);
  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo.get()) != 0) return false;
  OdbPtr odb(raw_odb);
  size_t len = 0;
  git_object_t type = GIT_OBJECT_INVALID;
  return git_odb_read_header(&len, &type, odb.get(), &oid) == 0 && type == GIT_OBJECT_COMMIT;
}

std::expected<WrittenCheckout, Error> write_checkout(const fs::path& mirror, const git_oid& oid,
                                                     const fs::path& dest,
                                                     const std::string& redacted_url) {
  std::error_code ec;
  bool existed = fs::exists(dest, ec);
  if (existed && (!fs::is_directory(dest, ec) || !fs::is_empty(dest, ec))) {
    return std::unexpected(Error{ErrorKind::kInvalidArgument,
                                 "checkout folder is not empty: " + dest.string(), redacted_url});
  }
  fs::create_directories(dest, ec);
  if (ec) {
    return std::unexpected(Error{ErrorKind::kIo, "cannot create " + dest.string() + ": " + ec.message(),
                                 redacted_url});
  }
  auto written = write_into(mirror, oid, dest);
  if (written) return std::move(*written);
  // Leave the folder as we found it.
  if (existed) {
    for (auto it = fs::directory_iterator(dest, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      fs::remove_all(it->path(), ec);
    }
  } else {
    fs::remove_all(dest, ec);
  }
  return std::unexpected(Error{ErrorKind::kIo, written.error(), redacted_url});
}

}  // namespace sandci::git
