#pragma once
// One libgit2 fetch into an existing bare repository, with credentials, host-key
// checking, timeouts and progress, its failures sorted into ErrorKinds.
#include <expected>
#include <filesystem>
#include <string>

#include "git/error.h"
#include "git/mirror_cache.h"

namespace sandci::git {

struct FetchOutcome {
  FetchProgress progress;
  int credential_tries = 0;
};

struct FetchFailure {
  Error error;
  // The cause is in the local repository (damaged objects or refs), not the network or
  // the server: rebuilding the mirror may help.
  bool local_damage = false;
};

// `url` may carry credentials (used when options.credentials has none); libgit2 only
// ever sees it without them.
std::expected<FetchOutcome, FetchFailure> fetch_into(const std::filesystem::path& bare_repo,
                                                     std::string_view url,
                                                     const FetchOptions& options);

}  // namespace sandci::git
