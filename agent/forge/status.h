#pragma once
// Commit statuses: the HTTP request that sets one on each forge, and what the forge's
// answer means for the sender (delivered, try again later, or give up). Pure: the
// caller performs the request and passes the answer and the current time in.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/forge/forge_kind.h"

namespace sandci::agent::forge {

enum class CommitState { pending, running, success, failure, error, cancelled };

std::string_view to_string(CommitState state);

struct StatusTarget {
  ForgeKind forge = ForgeKind::github;
  // The API root exactly: https://api.github.com, https://ghe.example/api/v3,
  // https://gitea.example/api/v1, https://gitlab.example/api/v4 (a trailing '/' is ignored).
  std::string api_url;
  std::string repository;                  // owner/name (GitLab: the project path)
  std::optional<std::int64_t> project_id;  // GitLab: used instead of the path when set
};

struct CommitStatus {
  std::string sha;
  std::string context;      // GitHub/Gitea "context", GitLab "name"
  std::string description;
  std::string target_url;
  std::string ref;          // GitLab only: the branch or tag the pipeline ran for
  CommitState state = CommitState::pending;
};

struct HttpCall {
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Descriptions longer than this are cut (with an ellipsis) at a UTF-8 character boundary.
inline constexpr std::size_t kGithubDescriptionLimit = 140;
inline constexpr std::size_t kGitlabDescriptionLimit = 255;

// The state as the forge spells it on the wire. GitHub, Gitea and Forgejo have no running
// (pending) and no cancelled (error); GitLab says running, failed (for failure and error)
// and canceled.
std::string_view forge_state(ForgeKind forge, CommitState state);

// The request that sets `status` on the target's commit:
//  - GitHub: POST {api}/repos/{owner}/{repo}/statuses/{sha}; Authorization: Bearer,
//    Accept: application/vnd.github+json, X-GitHub-Api-Version; body state, context,
//    description (at most 140 characters), target_url.
//  - Gitea/Forgejo: the same path; Authorization: token; the same body (the same
//    140-character cut, though Gitea sets no limit).
//  - GitLab: POST {api}/projects/{id or URL-encoded path}/statuses/{sha}; PRIVATE-TOKEN;
//    body state, name, ref, target_url, description (at most 255 characters).
// Every request has User-Agent: sandci, Content-Type and Accept headers. Path segments
// are percent-encoded; empty optional fields are left out of the body; the auth header
// is left out when `token` is empty. The body is JSON; invalid UTF-8 in a field is
// replaced by U+FFFD rather than refused.
HttpCall build_status_request(const StatusTarget& target, const CommitStatus& status,
                              std::string_view token);

struct StatusAnswer {
  enum class Outcome { delivered, retry, refused };
  Outcome outcome = Outcome::refused;
  std::optional<std::chrono::seconds> retry_after;  // when the forge said how long to wait
  std::string reason;  // the forge's own message (at most ~200 characters), or "HTTP <n>"
};

// What the answer to a status request means:
//  - 2xx: delivered. GitLab 400 "Cannot transition status": the state is already set,
//    delivered too.
//  - 408, 429, 5xx, and 403 showing a rate limit (x-ratelimit-remaining: 0, a
//    Retry-After header, or "rate limit" in the message): retry.
//  - anything else (401, 404, 422, other 4xx, 1xx, 3xx): refused.
// retry_after comes from Retry-After (seconds or an HTTP date, relative to `now`), else
// from x-ratelimit-reset / ratelimit-reset (epoch seconds) when the remaining count is 0;
// never negative. reason is the JSON body's "message" (GitHub adds its first
// errors[].message), else "error", else the start of the body text.
StatusAnswer classify_status_answer(ForgeKind forge, int http_status,
                                    const HeaderLookup& headers, std::string_view body,
                                    std::chrono::system_clock::time_point now);

}  // namespace sandci::agent::forge
