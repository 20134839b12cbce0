#pragma once
// The CheckoutFunction of the daemon and of `sandci run`: checkouts through the
// mirror cache (git/mirror_cache.h), with the repository's URL and credentials
// from the caller's resolver, so forge knowledge stays with the caller.
#include <expected>
#include <functional>
#include <string>
#include <string_view>

#include "agent/runner/checkout_action.h"
#include "git/credentials.h"
#include "git/mirror_cache.h"

namespace sandci::agent {

// Where a repository is fetched from.
struct RepositoryRemote {
  std::string url;
  git::Credentials credentials;
  bool pull_requests = false;  // fetch refs/pull/* too (a pull request's own repository)
};

// owner/name -> its remote, or a sentence saying why this agent cannot fetch it.
using RemoteResolver = std::function<std::expected<RepositoryRemote, std::string>(std::string_view repository)>;

// A CheckoutFunction over `mirrors` (which must outlive it): resolves the ref in
// the mirror (fetching when it is not there yet; an empty ref is the mirror's HEAD,
// else main, else master), writes the checkout, and when its objects are not all
// in the mounted folders copies the ones the requested history needs into it.
CheckoutFunction mirror_checkout(git::MirrorCache& mirrors, RemoteResolver resolve);

}  // namespace sandci::agent
