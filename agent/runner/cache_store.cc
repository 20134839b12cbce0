#include "agent/runner/cache_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/runner/hex.h"

namespace sandci::agent {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return lower_hex(digest, len);
}

// "Octo-Org/app" -> "Octo-Org_app-1a2b3c4d": readable, and distinct repositories
// never share a folder.
std::string repo_slug(std::string_view repository) {
  std::string out;
  for (char c : repository)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  if (out.empty() || out.front() == '.') out.insert(0, "r");
  return out + "-" + sha256_hex(repository).substr(0, 8);
}

// An exclusive flock held while it lives.
class RepoLock {
 public:
  explicit RepoLock(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~RepoLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::optional<std::string> read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Written aside and renamed, so a reader sees the old content or the new.
bool write_text(const fs::path& file, std::string_view text) {
  static std::atomic<std::uint64_t> counter{0};
  const fs::path tmp = file.parent_path() / (".w-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) fs::remove(tmp, ec);
  return !ec;
}

std::uint64_t read_number(const fs::path& file) {
  auto text = read_text(file);
  if (!text) return 0;
  try {
    return std::stoull(*text);
  } catch (const std::exception&) {
    return 0;
  }
}

// The repository's next tick (call with the lock held).
std::uint64_t next_tick(const fs::path& dir) {
  const std::uint64_t tick = read_number(dir / ".clock") + 1;
  write_text(dir / ".clock", std::to_string(tick));
  return tick;
}

std::optional<CacheEntry> read_entry(const fs::path& dir) {
  auto text = read_text(dir / "meta.json");
  if (!text) return std::nullopt;
  json meta = json::parse(*text, nullptr, false);
  if (!meta.is_object() || !fs::is_directory(dir / "files")) return std::nullopt;
  CacheEntry entry;
  entry.key = meta.value("key", "");
  entry.version = meta.value("version", "");
  entry.ref = meta.value("ref", "");
  entry.bytes = meta.value("bytes", std::uint64_t{0});
  entry.created = meta.value("created", std::uint64_t{0});
  entry.last_used = std::max(entry.created, read_number(dir / "used"));
  entry.files = dir / "files";
  return entry;
}

std::vector<CacheEntry> read_entries(const fs::path& dir) {
  std::vector<CacheEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.front() == '.' || !it->is_directory()) continue;
    if (auto entry = read_entry(it->path())) out.push_back(std::move(*entry));
  }
  std::sort(out.begin(), out.end(), [](const CacheEntry& a, const CacheEntry& b) { return a.created > b.created; });
  return out;
}

// Bytes of regular files under `dir`, links not followed.
std::uint64_t folder_bytes(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  return total;
}

bool process_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// Removes .tmp folders left by processes that are gone (a crash mid-save or mid-delete).
void remove_abandoned(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".tmp-", 0) != 0 && name.rfind(".w-", 0) != 0) continue;
    const std::size_t start = name.find('-') + 1;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(name.substr(start)));
    } catch (const std::exception&) {
    }
    std::error_code rm;
    if (!process_alive(pid)) fs::remove_all(it->path(), rm);
  }
}

fs::path fresh_tmp(const fs::path& dir) {
  static std::atomic<std::uint64_t> counter{0};
  return dir / (".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
}

// Removes an entry: renamed aside first, so no reader ever sees it half gone.
void remove_entry(const fs::path& repo, const fs::path& entry_files) {
  const fs::path aside = fresh_tmp(repo);
  std::error_code ec;
  fs::rename(entry_files.parent_path(), aside, ec);
  if (!ec) fs::remove_all(aside, ec);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::expected<void, std::string> validate_cache_key(std::string_view key) {
  if (key.empty()) return std::unexpected("the key is empty");
  if (key.size() > 512) return std::unexpected("the key is longer than 512 characters");
  if (key.find(',') != std::string_view::npos) return std::unexpected("the key '" + std::string(key) + "' holds a comma");
  return {};
}

CacheStore::CacheStore(fs::path root, std::uint64_t budget_bytes)
    : root_(std::move(root)), budget_bytes_(budget_bytes) {}

fs::path CacheStore::repo_dir(std::string_view repository) const { return root_ / repo_slug(repository); }

std::vector<CacheEntry> CacheStore::entries(std::string_view repository) const {
  return read_entries(repo_dir(repository));
}

std::expected<std::optional<CacheEntry>, std::string> CacheStore::find(const CacheScope& scope,
                                                                        const CacheQuery& query) {
  const fs::path dir = repo_dir(scope.repository);
  if (!fs::is_directory(dir)) return std::optional<CacheEntry>();
  RepoLock lock(fs::path(dir.string() + ".lock"));
  if (!lock.held()) return std::unexpected("cannot lock the cache of " + scope.repository);
  const auto all = read_entries(dir);  // newest first
  auto pick = [&]() -> std::optional<CacheEntry> {
    for (const auto& ref : scope.read_refs) {
      auto in_scope = [&](const CacheEntry& e) { return e.ref == ref && e.version == query.version; };
      for (const auto& e : all)
        if (in_scope(e) && e.key == query.primary_key) return e;
      std::vector<std::string> prefixes{query.primary_key};
      prefixes.insert(prefixes.end(), query.restore_keys.begin(), query.restore_keys.end());
      for (const auto& prefix : prefixes) {
        if (prefix.empty()) continue;
        for (const auto& e : all)
          if (in_scope(e) && starts_with(e.key, prefix)) return e;
      }
    }
    return std::nullopt;
  };
  auto found = pick();
  if (found) {
    found->last_used = next_tick(dir);
    write_text(found->files.parent_path() / "used", std::to_string(found->last_used));
  }
  return found;
}

std::expected<fs::path, std::string> CacheStore::staging_folder(std::string_view repository) {
  const fs::path dir = repo_dir(repository);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected("cannot create the cache folder " + dir.string() + ": " + ec.message());
  const fs::path tmp = fresh_tmp(dir);
  fs::create_directories(tmp / "files", ec);
  if (ec) return std::unexpected("cannot create " + tmp.string() + ": " + ec.message());
  return tmp / "files";
}

std::expected<CacheStore::SaveResult, std::string> CacheStore::save(const CacheScope& scope, std::string_view key,
                                                                    std::string_view version, const fs::path& files) {
  const fs::path dir = repo_dir(scope.repository);
  const fs::path staging = files.parent_path();
  struct Consume {  // the staging folder goes away whatever happens
    fs::path path;
    ~Consume() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } consume{staging};
  if (auto valid = validate_cache_key(key); !valid) return std::unexpected(valid.error());
  if (staging.parent_path() != dir || staging.filename().string().rfind(".tmp-", 0) != 0)
    return std::unexpected("internal: " + files.string() + " is not a staging folder of this cache");

  SaveResult result;
  result.bytes = folder_bytes(files);
  if (budget_bytes_ && result.bytes > budget_bytes_) {
    result.status = SaveStatus::kTooBig;
    return result;
  }
  RepoLock lock(fs::path(dir.string() + ".lock"));
  if (!lock.held()) return std::unexpected("cannot lock the cache of " + scope.repository);
  remove_abandoned(dir);
  const std::string id = sha256_hex(scope.write_ref + "\n" + std::string(version) + "\n" + std::string(key)).substr(0, 32);
  const fs::path target = dir / id;
  if (read_entry(target)) {
    result.status = SaveStatus::kExists;
    return result;
  }
  std::error_code ec;
  fs::remove_all(target, ec);  // a folder that is no entry (no meta.json) is debris
  const std::uint64_t tick = next_tick(dir);
  json meta = {{"key", key},   {"version", version}, {"ref", scope.write_ref}, {"bytes", result.bytes},
               {"created", tick}, {"repository", scope.repository}};
  if (!write_text(staging / "meta.json", meta.dump(2) + "\n"))
    return std::unexpected("cannot write the cache entry's metadata in " + staging.string());
  fs::rename(staging, target, ec);
  if (ec) return std::unexpected("cannot move the cache entry into " + target.string() + ": " + ec.message());

  // Least recently used first; the new entry stays.
  auto all = read_entries(dir);
  std::uint64_t total = 0;
  for (const auto& e : all) total += e.bytes;
  std::sort(all.begin(), all.end(), [](const CacheEntry& a, const CacheEntry& b) { return a.last_used < b.last_used; });
  for (const auto& e : all) {
    if (!budget_bytes_ || total <= budget_bytes_) break;
    if (e.files.parent_path() == target) continue;
    remove_entry(dir, e.files);
    total -= e.bytes;
    result.evicted.push_back(e.key);
  }
  return result;
}

}  // namespace sandci::agent
