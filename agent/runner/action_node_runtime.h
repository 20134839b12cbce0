#pragma once
// The Node.js runtime JavaScript actions run on. A job's image need not carry
// Node: the runner copies the host's `node` binary with the shared libraries it
// links (as `ldd` lists them) and the dynamic loader into a self-contained folder
// on the host, mounts it read-only into the sandbox, and starts node through that
// loader with --library-path, so it runs the same in any image (glibc, musl or
// none at all). Built once per node version and reused.
#include <expected>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent {

// A runtime folder: bin/node, lib/<every library node needs>, lib/<the loader>.
struct NodeRuntime {
  std::filesystem::path dir;  // on the host
  std::string version;        // "v20.20.2"
  std::string loader;         // file name of the dynamic loader in lib/

  // The argv that runs `script` (a path inside the sandbox) with this runtime
  // mounted at `mount` inside the sandbox.
  std::vector<std::string> command(const std::string& mount, const std::string& script) const;
};

// What `ldd` says a binary needs: the libraries by path and the loader.
struct LinkedLibraries {
  std::vector<std::filesystem::path> libraries;
  std::filesystem::path loader;  // empty: a static binary
};

// Reads `ldd` output ("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
// "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)"). A library
// "not found" is an error naming it.
std::expected<LinkedLibraries, std::string> parse_ldd_output(std::string_view text);

// The host's node: the first `node` (then `nodejs`) on `path_env` (a PATH value).
// The error says how to get one.
std::expected<std::filesystem::path, std::string> find_host_node(std::string_view path_env);

// Builds (or finds) the runtime folder for `node_binary` under
// `cache_root`/<version>/. Written in a temporary folder and renamed into place,
// so concurrent builders (two jobs, two agents) end with one whole folder.
std::expected<NodeRuntime, std::string> prepare_node_runtime(const std::filesystem::path& cache_root,
                                                             const std::filesystem::path& node_binary);

// One runtime per runner, built on first use (thread-safe); a failure is kept
// and returned to every later caller too, so a missing node is reported by each
// step that needs it without trying again and again.
class NodeRuntimeCache {
 public:
  // `cache_root` empty: /var/cache/sandci/node. `fallback_root` is used when
  // `cache_root` cannot be written (an unprivileged `sandci run`).
  NodeRuntimeCache(std::filesystem::path cache_root, std::filesystem::path fallback_root);
  std::expected<NodeRuntime, std::string> get();

 private:
  std::filesystem::path cache_root_, fallback_root_;
  std::mutex mutex_;
  std::optional<std::expected<NodeRuntime, std::string>> result_;
};

}  // namespace sandci::agent
