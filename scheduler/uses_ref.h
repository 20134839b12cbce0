#pragma once
// What a `uses:` names, read the way GitHub reads it: a step's action
// (`./path`, `owner/repo[/path]@ref`, `docker://image`) or a job's reusable
// workflow (`./.github/workflows/x.yml`, `owner/repo/.github/workflows/x.yml@ref`).
// Pure: it only splits the text; finding and fetching what it names is the runner's.
#include <expected>
#include <string>
#include <string_view>

namespace sandci::scheduler {

struct UsesRef {
  enum class Kind {
    local,   // ./path (or $/path, the workflow's own repository): in the run's checkout
    remote,  // owner/repo[/path]@ref: fetched from the actions source
    docker,  // docker://image: refused (jobs cannot reach a registry)
  };
  Kind kind = Kind::local;
  std::string owner, repo;  // remote only
  std::string path;         // inside the repository; "" for its root (no leading or trailing '/')
  std::string ref;          // remote only: tag, branch or commit as written
  std::string image;        // docker only

  // "owner/repo" (remote), else "".
  std::string repository() const { return kind == Kind::remote ? owner + "/" + repo : std::string(); }
  // The action's name without the ref, lower case for remote ones: "actions/checkout",
  // "./tools/lint" (local), "docker://alpine:3" (docker).
  std::string name() const;
};

// Splits a `uses:` value. Errors say what is wrong in words ("'uses: foo' must be
// ./path, owner/repo@ref or docker://image"): a missing ref, an empty owner or
// repository, a path that climbs out with "..", spaces.
std::expected<UsesRef, std::string> parse_uses(std::string_view text);

}  // namespace sandci::scheduler
