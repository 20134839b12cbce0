#pragma once
// Artifacts of one run, kept on the host, as actions/upload-artifact@v4 and
// actions/download-artifact@v4 see them.
//
// The flow for `uses: actions/upload-artifact@v4`: the glue validates the name and the
// `path:` input, expands the patterns to files (expand_path_patterns, against the
// workspace), copies those files out of the sandbox into a host folder (tar), then calls
// ArtifactStore::upload on that folder, which expands the same patterns there and keeps
// the files relative to the patterns' root folder, as upload-artifact does: `path: build/`
// stores `build/hello` as `hello`, and `download(name, "build")` puts it back.
//
// Everything a step wrote is untrusted: symbolic links are never followed out of the
// folder they are in (one pointing out is an error), no `..` or absolute path gets in,
// and files are opened component by component with O_NOFOLLOW so a link swapped in
// between listing and copying is refused too.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent {

// An artifact name: non-empty, at most 255 bytes, without '/', '\\', "..", control
// characters or any of : * ? " < > |. Returns the reason when invalid.
std::expected<void, std::string> validate_artifact_name(std::string_view name);

// `if-no-files-found:` of upload-artifact: warn (the action's default), error, ignore.
enum class IfNoFilesFound { kWarn, kError, kIgnore };
std::expected<IfNoFilesFound, std::string> parse_if_no_files_found(std::string_view value);

// One line of a `path:` input, normalised: segments without "." or empty ones.
struct PathPattern {
  std::vector<std::string> segments;  // may hold * ? [..] and whole-segment **
  bool exclude = false;               // the line started with '!'
  std::string text() const;           // segments joined by '/' ("." when empty)
};

// Parses a `path:` input: one pattern per line (blank lines and `#` comments skipped),
// relative to the workspace; `!pattern` excludes; later lines override earlier ones.
// Absolute paths, `~`, and `..` that would leave the workspace are refused. At least
// one include pattern is required.
std::expected<std::vector<PathPattern>, std::string> parse_path_patterns(std::string_view input);

struct ExpandOptions {
  // upload-artifact@v4 skips dot files and folders by default. Unlike it, a hidden
  // folder named literally in a pattern (`path: .out/`) is searched; what is hidden
  // beneath it is still skipped.
  bool include_hidden_files = false;
};

struct PathExpansion {
  std::vector<std::string> files;     // relative to the folder expanded in, '/'-separated, sorted
  std::string root;                   // the folder the artifact's paths are relative to ("" = top)
  std::vector<std::string> warnings;  // e.g. a symbolic link to a directory, not descended
};

// Lists the files under `dir` that the patterns select. A pattern naming a directory
// selects everything beneath it. Symbolic links are not descended; one to a regular
// file inside `dir` counts as that file, one pointing out of `dir` (or dangling) is an
// error naming it.
std::expected<PathExpansion, std::string> expand_path_patterns(
    const std::filesystem::path& dir, const std::vector<PathPattern>& patterns,
    const ExpandOptions& options = {});

// Validates download-artifact's `path:` input: relative to the workspace, not leaving
// it; returns it normalised ("" for the workspace itself).
std::expected<std::string, std::string> resolve_download_path(std::string_view input);

class ArtifactStore {
 public:
  // Keeps artifacts under `run_dir`/artifacts (created on first upload), or under
  // `run_dir`/artifacts/`scope` when a run holds several workflows: as on GitHub,
  // where each workflow is a run of its own, one workflow's artifacts are not
  // another's (two may both upload "dist"). Artifacts already there (a store
  // reopened on the same run) count as uploaded.
  explicit ArtifactStore(std::filesystem::path run_dir, std::string scope = {});

  struct UploadOptions {
    IfNoFilesFound if_no_files_found = IfNoFilesFound::kWarn;
    bool include_hidden_files = false;
    bool overwrite = false;  // upload-artifact@v4 `overwrite: true`
  };
  struct UploadResult {
    bool uploaded = false;  // false when nothing matched and that was allowed
    std::size_t file_count = 0;
    std::uint64_t bytes = 0;
    std::string warning;  // set when nothing matched under kWarn
  };
  // Stores the files of `source_dir` that `path_input` selects as artifact `name`.
  // Errors: invalid name or patterns, a name already uploaded in this run (unless
  // overwrite), nothing matched under kError, an escaping symbolic link, I/O failures.
  // Thread-safe (jobs of a run upload concurrently).
  std::expected<UploadResult, std::string> upload(std::string_view name,
                                                  const std::filesystem::path& source_dir,
                                                  std::string_view path_input,
                                                  const UploadOptions& options);
  std::expected<UploadResult, std::string> upload(std::string_view name,
                                                  const std::filesystem::path& source_dir,
                                                  std::string_view path_input) {
    return upload(name, source_dir, path_input, UploadOptions{});
  }

  struct DownloadResult {
    std::size_t file_count = 0;
    std::uint64_t bytes = 0;
  };
  // Writes artifact `name`'s files under `dest_root`/`subdir`, replacing files of the
  // same name. `dest_root` is the caller's (created if missing); `subdir` (from
  // resolve_download_path, may be "") and everything beneath it are created without
  // following any symbolic link, so a link planted by a step is refused, not written
  // through.
  std::expected<DownloadResult, std::string> download(std::string_view name,
                                                      const std::filesystem::path& dest_root,
                                                      std::string_view subdir = "") const;
  // download-artifact without `name:`: every artifact into `subdir`/<name>/.
  std::expected<DownloadResult, std::string> download_all(const std::filesystem::path& dest_root,
                                                          std::string_view subdir = "") const;

  // Names of the uploaded artifacts, sorted.
  std::vector<std::string> names() const;

 private:
  std::filesystem::path artifacts_dir() const { return scoped(run_dir_ / "artifacts"); }
  std::filesystem::path staging_dir() const { return scoped(run_dir_ / "artifacts-staging"); }
  std::filesystem::path scoped(std::filesystem::path dir) const { return scope_.empty() ? dir : dir / scope_; }

  std::filesystem::path run_dir_;
  std::string scope_;  // "" or a folder name (validated by the caller)
  mutable std::mutex mutex_;
  std::set<std::string> names_;      // uploaded
  std::set<std::string> uploading_;  // reserved by an upload in progress
  std::uint64_t staging_counter_ = 0;
};

}  // namespace sandci::agent
