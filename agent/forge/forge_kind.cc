#include "agent/forge/forge_kind.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace sandci::agent::forge {
namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view to_string(ForgeKind kind) {
  switch (kind) {
    case ForgeKind::github: return "github";
    case ForgeKind::gitea: return "gitea";
    case ForgeKind::forgejo: return "forgejo";
    case ForgeKind::gitlab: return "gitlab";
  }
  return "unknown";
}

std::optional<ForgeKind> parse_forge_kind(std::string_view name) {
  for (ForgeKind kind :
       {ForgeKind::github, ForgeKind::gitea, ForgeKind::forgejo, ForgeKind::gitlab}) {
    if (equals_ignoring_case(name, to_string(kind))) return kind;
  }
  return std::nullopt;
}

std::optional<ForgeKind> detect_forge(const HeaderLookup& headers) {
  static constexpr std::array<std::pair<std::string_view, ForgeKind>, 4> kByEventHeader{{
      {"X-Forgejo-Event", ForgeKind::forgejo},
      {"X-Gitea-Event", ForgeKind::gitea},
      {"X-Gitlab-Event", ForgeKind::gitlab},
      {"X-GitHub-Event", ForgeKind::github},
  }};
  for (const auto& [header, kind] : kByEventHeader) {
    if (headers(header)) return kind;
  }
  return std::nullopt;
}

}  // namespace sandci::agent::forge
