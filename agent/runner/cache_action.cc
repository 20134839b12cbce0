#include "agent/runner/cache_action.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <system_error>

#include "agent/runner/artifacts.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

// The sandbox folders a cache may hold, by their name under the root: the
// workspace, $HOME (/root), /home (GitHub's /home/runner paths, and
// $RUNNER_WORKSPACE), /opt ($RUNNER_TOOL_CACHE) and /tmp; the jobs' writable
// places. The rest of a sandbox is the image's system.
constexpr std::string_view kAllowedRoots[] = {"workspace", "root", "home", "opt", "tmp"};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// Non-empty trimmed lines.
std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line = trim(text.substr(start, end - start));
    if (!line.empty()) out.push_back(std::move(line));
    start = end + 1;
  }
  return out;
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Maps every `path:` line; the patterns are relative to the sandbox's root.
std::expected<std::vector<PathPattern>, std::string> sandbox_patterns(std::string_view path_input) {
  std::string mapped;
  for (const auto& line : lines_of(path_input)) {
    if (line.front() == '#') continue;
    auto one = cache_path_in_sandbox(line);
    if (!one) return std::unexpected(one.error());
    mapped += *one + "\n";
  }
  if (mapped.empty()) return std::unexpected("input required and not supplied: path");
  return parse_path_patterns(mapped);
}

bool inside(const fs::path& root, const fs::path& path) {
  const fs::path rel = path.lexically_normal().lexically_relative(root.lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

// Copies one selected file into the entry: regular files (hard-linked when the
// file system allows), symbolic links that stay inside the copied folders as
// links; anything else (devices, fifos, sockets) is left out.
std::expected<bool, std::string> add_to_entry(const fs::path& host_root, const std::string& rel,
                                              const fs::path& entry) {
  const fs::path src = host_root / rel;
  const fs::path dst = entry / rel;
  struct stat st{};
  if (::lstat(src.c_str(), &st) != 0) return false;
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  if (ec) return std::unexpected("cannot create " + dst.parent_path().string() + ": " + ec.message());
  if (S_ISREG(st.st_mode)) {
    fs::create_hard_link(src, dst, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(src, dst, ec);
    }
    if (ec) return std::unexpected("cannot copy " + rel + ": " + ec.message());
    return true;
  }
  if (S_ISLNK(st.st_mode)) {
    const fs::path target = fs::read_symlink(src, ec);
    if (ec) return std::unexpected("cannot read the link " + rel + ": " + ec.message());
    if (target.is_absolute() || !inside(host_root, src.parent_path() / target))
      return std::unexpected("the symbolic link " + rel + " leads out of the cached folders");
    fs::create_symlink(target, dst, ec);
    if (ec) return std::unexpected("cannot copy the link " + rel + ": " + ec.message());
    return true;
  }
  return false;
}

scheduler::StepOutcome with_outputs(scheduler::StringMap outputs) {
  scheduler::StepOutcome outcome;
  outcome.outputs = std::move(outputs);
  return outcome;
}

}  // namespace

bool is_cache_action(std::string_view action) {
  return action == "actions/cache" || action == "actions/cache/restore" || action == "actions/cache/save";
}

std::expected<std::string, std::string> cache_path_in_sandbox(std::string_view input) {
  std::string line = trim(input);
  const bool exclude = !line.empty() && line.front() == '!';
  if (exclude) line = trim(std::string_view(line).substr(1));
  const std::string original = line;
  if (line.empty()) return std::unexpected("an empty path");
  std::string absolute;
  if (line == "~" || line.rfind("~/", 0) == 0) absolute = "/root" + line.substr(1);
  else if (line.front() == '/') absolute = line;
  else if (line.front() == '~') return std::unexpected("path '" + original + "': only your own ~ is known in a sandbox");
  else absolute = "/workspace/" + line;
  // Lexical normalisation: `..` may not climb out of the allowed folder.
  std::vector<std::string> segments;
  std::size_t start = 1;
  while (start <= absolute.size()) {
    std::size_t end = absolute.find('/', start);
    if (end == std::string::npos) end = absolute.size();
    std::string seg = absolute.substr(start, end - start);
    start = end + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (segments.size() <= 1)
        return std::unexpected("path '" + original + "' leaves the folders a cache may hold (the workspace, ~, /home, /opt and /tmp)");
      segments.pop_back();
      continue;
    }
    segments.push_back(std::move(seg));
  }
  if (segments.empty() ||
      std::find(std::begin(kAllowedRoots), std::end(kAllowedRoots), segments.front()) == std::end(kAllowedRoots))
    return std::unexpected("path '" + original +
                           "' is outside the folders a cache may hold in a sandbox (the workspace, ~, /home, /opt and /tmp)");
  std::string out = exclude ? "!" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) out += (i ? "/" : "") + segments[i];
  return out;
}

std::string cache_version(std::string_view path_input) {
  std::string version = "sandci-cache-1";
  for (const auto& line : lines_of(path_input)) version += "\n" + line;
  return version;
}

CacheSteps::CacheSteps(CacheStore* store, CacheScope scope) : store_(store), scope_(std::move(scope)) {}

scheduler::StepOutcome CacheSteps::run(std::string_view action, const BuiltinStep& step) {
  for (const char* ignored : {"enableCrossOsArchive", "upload-chunk-size", "save-always"})
    if (!step.input(ignored).empty()) step.log(std::string("note: '") + ignored + "' is ignored by sandci");
  if (action == "actions/cache/save") {
    const std::string key = step.input("key");
    if (key.empty()) return step.fail("cache/save: input required and not supplied: key");
    return save(step, key, step.input("path"));
  }
  return restore(action, step);
}

scheduler::StepOutcome CacheSteps::restore(std::string_view action, const BuiltinStep& step) {
  const std::string what = std::string(action.substr(std::string_view("actions/").size()));
  const std::string key = trim(step.input("key"));
  const std::string path_input = step.input("path");
  if (key.empty()) return step.fail(what + ": input required and not supplied: key");
  auto restore_keys = lines_of(step.input("restore-keys"));
  if (auto valid = validate_cache_key(key); !valid) return step.fail(what + ": " + valid.error());
  for (const auto& k : restore_keys)
    if (auto valid = validate_cache_key(k); !valid) return step.fail(what + ": restore-keys: " + valid.error());
  auto patterns = sandbox_patterns(path_input);
  if (!patterns) return step.fail(what + ": " + patterns.error());
  auto fail_on_miss = boolean_input(step, "fail-on-cache-miss", false);
  if (!fail_on_miss) return step.fail(what + ": " + fail_on_miss.error());
  auto lookup_only = boolean_input(step, "lookup-only", false);
  if (!lookup_only) return step.fail(what + ": " + lookup_only.error());

  std::optional<CacheEntry> found;
  if (!store_) {
    step.log("warning: no cache folder is configured for this agent: nothing is restored or saved");
  } else if (auto looked = store_->find(scope_, {key, restore_keys, cache_version(path_input)}); !looked) {
    step.log("warning: cache lookup failed: " + looked.error());
  } else {
    found = *looked;
  }
  if (found && !*lookup_only) {
    // One copy per allowed folder: extracting over / itself would touch its owner and times.
    for (std::string_view root : kAllowedRoots) {
      const fs::path part = found->files / root;
      if (!fs::is_directory(part)) continue;
      if (auto copied = step.sandbox->copy_in(part.string(), "/" + std::string(root)); !copied) {
        step.log("warning: failed to restore the cache: " + copied.error().message);
        found.reset();
        break;
      }
    }
  }
  const bool exact = found && found->key == key;
  if (!found) {
    step.log("Cache not found for input keys: " + join_keys([&] {
               std::vector<std::string> all{key};
               all.insert(all.end(), restore_keys.begin(), restore_keys.end());
               return all;
             }()));
    if (*fail_on_miss)
      return step.fail("Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: " + key);
  } else if (*lookup_only) {
    step.log("Cache found and can be restored from key: " + found->key);
  } else {
    step.log("Cache restored from key: " + found->key + " (" + std::to_string(found->bytes) + " bytes)");
  }
  if (action == "actions/cache" && !exact)
    pending_.push_back({step.request ? step.request->name : "cache", key, path_input});
  scheduler::StringMap outputs{{"cache-hit", exact ? "true" : "false"}};
  if (action == "actions/cache/restore") {
    outputs.emplace_back("cache-primary-key", key);
    outputs.emplace_back("cache-matched-key", found ? found->key : "");
  }
  return with_outputs(std::move(outputs));
}

scheduler::StepOutcome CacheSteps::save(const BuiltinStep& step, const std::string& key,
                                        const std::string& path_input) {
  if (auto valid = validate_cache_key(key); !valid) return step.fail("cache save: " + valid.error());
  auto patterns = sandbox_patterns(path_input);
  if (!patterns) return step.fail("cache save: " + patterns.error());
  if (!store_) {
    step.log("warning: no cache folder is configured for this agent: the cache is not saved");
    return {};
  }
  // Copy the patterns' fixed leading folders out, then select files there with the
  // same patterns, as upload-artifact does.
  const fs::path host = step.scratch("cache-save");
  for (const auto& pattern : *patterns) {
    if (pattern.exclude) continue;
    std::string root;
    for (const auto& seg : pattern.segments) {
      if (seg.find_first_of("*?[") != std::string::npos) break;
      root += "/" + seg;
    }
    (void)step.sandbox->copy_out({root}, host.string());  // a missing path just selects nothing
  }
  ExpandOptions expand;
  expand.include_hidden_files = true;
  auto selected = expand_path_patterns(host, *patterns, expand);
  if (!selected) {
    step.log("warning: the cache is not saved: " + selected.error());
    return {};
  }
  if (selected->files.empty()) {
    step.log("warning: the cache paths match no file: no cache is saved");
    return {};
  }
  auto staging = store_->staging_folder(scope_.repository);
  if (!staging) {
    step.log("warning: the cache is not saved: " + staging.error());
    return {};
  }
  std::size_t count = 0;
  for (const auto& rel : selected->files) {
    auto added = add_to_entry(host, rel, *staging);
    if (!added) {
      std::error_code ec;
      fs::remove_all(staging->parent_path(), ec);
      step.log("warning: the cache is not saved: " + added.error());
      return {};
    }
    count += *added ? 1 : 0;
  }
  auto saved = store_->save(scope_, key, cache_version(path_input), *staging);
  if (!saved) {
    step.log("warning: the cache is not saved: " + saved.error());
    return {};
  }
  switch (saved->status) {
    case CacheStore::SaveStatus::kExists:
      step.log("Cache with key " + key + " already exists for " + scope_.write_ref + ": not saved again");
      break;
    case CacheStore::SaveStatus::kTooBig:
      step.log("warning: the cache (" + std::to_string(saved->bytes) +
               " bytes) is larger than this repository's cache budget: not saved");
      break;
    case CacheStore::SaveStatus::kSaved:
      step.log("Cache saved with key: " + key + " (" + std::to_string(count) + " files, " +
               std::to_string(saved->bytes) + " bytes)");
      for (const auto& evicted : saved->evicted) step.log("evicted the least recently used cache entry " + evicted);
      break;
  }
  return {};
}

void CacheSteps::run_post(bool job_succeeded, const BuiltinStep& post) {
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    post.log("##[post] Post " + it->name);
    if (!job_succeeded) {
      post.log("the job did not succeed: the cache is not saved");
      continue;
    }
    (void)save(post, it->key, it->path_input);
  }
  pending_.clear();
}

}  // namespace sandci::agent
