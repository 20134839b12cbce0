#pragma once
// Where a run's remote actions and reusable workflows come from. Jobs have no
// network, so the agent fetches what `uses: owner/repo[/path]@ref` names before
// (or while) a job needs it, and hands the job a read-only folder. Each ref is
// resolved to a commit once per run: every job of the run sees the same commit.
#include <expected>
#include <filesystem>
#include <string>

#include "scheduler/uses_ref.h"

namespace sandci::agent {

struct FetchedRepository {
  std::filesystem::path root;  // the repository's files at `commit` on the host (read-only to jobs)
  std::string commit;          // 40 hex digits
};

class ActionSource {
 public:
  virtual ~ActionSource() = default;
  // The repository `ref` names (remote refs only), at the commit its ref resolves
  // to. Thread-safe: jobs of one run ask at once. The error is ready to show
  // ("cannot fetch acme/tools@v2 from <source>: ...; on an agent without network,
  // fill the cache with `sandci actions add acme/tools@v2`").
  virtual std::expected<FetchedRepository, std::string> fetch(const scheduler::UsesRef& ref) = 0;
};

}  // namespace sandci::agent
