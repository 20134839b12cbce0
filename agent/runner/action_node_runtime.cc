#include "agent/runner/action_node_runtime.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "sandbox/process.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultCacheRoot = "/var/cache/sandci/node";
constexpr const char* kManifest = "runtime.txt";

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// A version usable as a folder name: "v20.20.2"; anything odd is replaced.
std::string folder_safe(std::string_view version) {
  std::string out;
  for (char c : version)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return out.empty() ? std::string("unknown") : out;
}

bool is_executable_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

// The manifest a finished runtime folder holds; nothing when the folder is not one.
std::optional<NodeRuntime> read_runtime(const fs::path& dir) {
  std::ifstream in(dir / kManifest);
  if (!in) return std::nullopt;
  NodeRuntime runtime;
  runtime.dir = dir;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("loader=", 0) == 0) runtime.loader = line.substr(7);
    if (line.rfind("version=", 0) == 0) runtime.version = line.substr(8);
  }
  if (runtime.loader.empty() || !is_executable_file(dir / "bin" / "node")) return std::nullopt;
  return runtime;
}

std::expected<void, std::string> copy_executable(const fs::path& from, const fs::path& to, bool executable) {
  std::error_code ec;
  fs::copy_file(fs::canonical(from, ec), to, fs::copy_options::overwrite_existing, ec);
  if (ec) return std::unexpected("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  const auto mode = executable ? fs::perms(0755) : fs::perms(0644);
  fs::permissions(to, mode, fs::perm_options::replace, ec);
  return {};
}

// Fills `dir` with bin/node, the libraries and the loader, and the manifest.
std::expected<NodeRuntime, std::string> build_runtime(const fs::path& dir, const fs::path& node,
                                                      const std::string& version) {
  auto ldd = sandbox::run_capture({"ldd", node.string()});
  if (!ldd) return std::unexpected("cannot run ldd on " + node.string() + ": " + ldd.error());
  if (!ldd->ok()) return std::unexpected("ldd " + node.string() + " failed: " + ldd->describe());
  auto linked = parse_ldd_output(ldd->out);
  if (!linked) return std::unexpected(node.string() + ": " + linked.error());
  if (linked->loader.empty())
    return std::unexpected(node.string() + " names no dynamic loader; sandci needs a dynamically linked node");
  std::error_code ec;
  fs::create_directories(dir / "bin", ec);
  fs::create_directories(dir / "lib", ec);
  for (const auto& sub : {dir, dir / "bin", dir / "lib"})
    fs::permissions(sub, fs::perms(0755), fs::perm_options::replace, ec);
  if (auto copied = copy_executable(node, dir / "bin" / "node", true); !copied) return std::unexpected(copied.error());
  for (const auto& lib : linked->libraries)
    if (auto copied = copy_executable(lib, dir / "lib" / lib.filename(), false); !copied)
      return std::unexpected(copied.error());
  NodeRuntime runtime{dir, version, linked->loader.filename().string()};
  if (auto copied = copy_executable(linked->loader, dir / "lib" / runtime.loader, true); !copied)
    return std::unexpected(copied.error());
  std::ofstream manifest(dir / kManifest);
  manifest << "version=" << version << "\nloader=" << runtime.loader << "\nsource=" << node.string() << "\n";
  if (!manifest.flush()) return std::unexpected("cannot write " + (dir / kManifest).string());
  return runtime;
}

}  // namespace

std::vector<std::string> NodeRuntime::command(const std::string& mount, const std::string& script) const {
  return {mount + "/lib/" + loader, "--library-path", mount + "/lib", mount + "/bin/node", script};
}

std::expected<LinkedLibraries, std::string> parse_ldd_output(std::string_view text) {
  LinkedLibraries out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (line.empty() || line.find("statically linked") != std::string::npos) continue;
    const auto arrow = line.find(" => ");
    if (arrow != std::string::npos) {
      std::string target = trim(line.substr(arrow + 4));
      if (target.rfind("not found", 0) == 0)
        return std::unexpected("the shared library " + line.substr(0, arrow) + " is not found");
      target = target.substr(0, target.find(" ("));
      if (!target.empty() && target.front() == '/') out.libraries.emplace_back(target);
      continue;
    }
    // "/lib64/ld-linux-x86-64.so.2 (0x...)" is the loader; "linux-vdso.so.1 (0x...)"
    // lives in the kernel and has no file.
    const std::string path = line.substr(0, line.find(" ("));
    if (!path.empty() && path.front() == '/') out.loader = path;
  }
  return out;
}

std::expected<fs::path, std::string> find_host_node(std::string_view path_env) {
  for (const char* name : {"node", "nodejs"}) {
    std::string_view rest = path_env;
    while (true) {
      const auto colon = rest.find(':');
      const std::string dir(rest.substr(0, colon));
      if (!dir.empty() && is_executable_file(fs::path(dir) / name)) return fs::path(dir) / name;
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  return std::unexpected(std::string(
      "this agent has no Node.js (no node on its PATH): JavaScript actions run on the host's node, copied into "
      "the sandbox; install Debian's nodejs package (scripts/install-deps.sh does)"));
}

std::expected<NodeRuntime, std::string> prepare_node_runtime(const fs::path& cache_root, const fs::path& node_binary) {
  auto version_run = sandbox::run_capture({node_binary.string(), "--version"});
  if (!version_run || !version_run->ok())
    return std::unexpected("cannot run " + node_binary.string() + " --version: " +
                           (version_run ? version_run->describe() : version_run.error()));
  const std::string version = trim(version_run->out);
  const fs::path final_dir = cache_root / folder_safe(version);
  if (auto ready = read_runtime(final_dir)) return *ready;

  std::error_code ec;
  fs::create_directories(cache_root, ec);
  if (ec) return std::unexpected("cannot create " + cache_root.string() + ": " + ec.message());
  std::random_device rd;
  const fs::path temp = cache_root / (".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  auto built = build_runtime(temp, node_binary, version);
  if (!built) {
    fs::remove_all(temp, ec);
    return std::unexpected(built.error());
  }
  // Folders appear here only by this rename, whole: an existing one is complete.
  fs::rename(temp, final_dir, ec);
  if (ec) {
    fs::remove_all(temp, ec);
    // Another builder won the race: its folder is as good as ours.
    if (auto ready = read_runtime(final_dir)) return *ready;
    return std::unexpected("cannot move the Node.js runtime into " + final_dir.string());
  }
  built->dir = final_dir;
  return *built;
}

NodeRuntimeCache::NodeRuntimeCache(fs::path cache_root, fs::path fallback_root)
    : cache_root_(cache_root.empty() ? fs::path(kDefaultCacheRoot) : std::move(cache_root)),
      fallback_root_(std::move(fallback_root)) {}

std::expected<NodeRuntime, std::string> NodeRuntimeCache::get() {
  std::lock_guard lock(mutex_);
  if (result_) return *result_;
  const char* path = std::getenv("PATH");
  auto node = find_host_node(path ? path : "/usr/local/bin:/usr/bin:/bin");
  if (!node) {
    result_ = std::unexpected(node.error());
    return *result_;
  }
  auto runtime = prepare_node_runtime(cache_root_, *node);
  if (!runtime && !fallback_root_.empty()) {
    auto second = prepare_node_runtime(fallback_root_, *node);
    runtime = second ? second : std::unexpected(runtime.error() + "; also " + second.error());
  }
  result_ = runtime;
  return *result_;
}

}  // namespace sandci::agent
