#include "agent/runner/mirror_checkout.h"

#include <algorithm>

#include "git/local_repo.h"

namespace sandci::agent {
namespace fs = std::filesystem;

namespace {

bool is_sha(const std::string& ref) {
  return ref.size() == 40 && std::all_of(ref.begin(), ref.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::expected<std::string, std::string> resolve_ref(const fs::path& mirror, const std::string& ref) {
  if (!ref.empty()) {
    auto sha = git::resolve_commit(mirror, ref);
    if (!sha) return std::unexpected("no branch, tag or commit named '" + ref + "'");
    return *sha;
  }
  for (const char* fallback : {"HEAD", "main", "master"})
    if (auto sha = git::resolve_commit(mirror, fallback)) return *sha;
  return std::unexpected("the repository has no default branch (give `ref:`)");
}

}  // namespace

CheckoutFunction mirror_checkout(git::MirrorCache& mirrors, RemoteResolver resolve) {
  return [&mirrors, resolve = std::move(resolve)](const CheckoutRequest& request)
             -> std::expected<CheckedOut, std::string> {
    auto remote = resolve(request.repository);
    if (!remote) return std::unexpected(remote.error());
    git::CheckoutOptions options;
    options.submodules = request.submodules;
    options.fetch.credentials = remote->credentials;
    options.fetch.pull_requests = remote->pull_requests;
    std::string sha = request.ref;
    if (!is_sha(sha)) {
      auto fetched = mirrors.fetch(remote->url, options.fetch);
      if (!fetched) return std::unexpected("cannot fetch " + request.repository + ": " + fetched.error().to_string());
      auto resolved = resolve_ref(fetched->mirror, request.ref);
      if (!resolved) return std::unexpected(request.repository + ": " + resolved.error());
      sha = *resolved;
    }
    auto written = mirrors.checkout(remote->url, sha, request.dest, options);
    if (!written)
      return std::unexpected("cannot check out " + request.repository + " at " + sha.substr(0, 12) + ": " +
                             written.error().to_string());
    const bool mounted = std::all_of(written->object_dirs.begin(), written->object_dirs.end(), [&](const fs::path& d) {
      return std::find(request.mounted_object_dirs.begin(), request.mounted_object_dirs.end(), d) !=
             request.mounted_object_dirs.end();
    });
    if (!mounted)
      if (auto embedded = embed_objects(request.dest, written->sha, request.fetch_depth); !embedded)
        return std::unexpected("cannot copy the objects of " + request.repository + ": " + embedded.error());
    return CheckedOut{written->sha};
  };
}

}  // namespace sandci::agent
