#pragma once
// Which forge a webhook came from or a status goes to, and the one type every function
// of this library takes headers in.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace sandci::agent::forge {

enum class ForgeKind { github, gitea, forgejo, gitlab };

// Looks a request or response header up by name, ignoring case (the caller's HTTP layer
// supplies it, so this library does not depend on one). nullopt: the header is absent.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view name)>;

// "github", "gitea", "forgejo", "gitlab".
std::string_view to_string(ForgeKind kind);

// The inverse of to_string, ignoring case; nullopt for any other name.
std::optional<ForgeKind> parse_forge_kind(std::string_view name);

// The forge that sent a webhook, from its event header. Forgejo also sends Gitea's and
// GitHub's headers and Gitea also sends GitHub's, so the most specific one wins:
// X-Forgejo-Event, then X-Gitea-Event, then X-Gitlab-Event, then X-GitHub-Event.
// nullopt when none is present.
std::optional<ForgeKind> detect_forge(const HeaderLookup& headers);

}  // namespace sandci::agent::forge
