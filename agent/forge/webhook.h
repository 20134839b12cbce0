#pragma once
// Webhooks from GitHub, Gitea, Forgejo and GitLab, in three stages:
//
//   1. read_envelope: what the request says about itself (event, delivery id, the
//      repository it names), so the caller can find that repository's secret. Nothing
//      in the envelope is trusted yet.
//   2. verify_signature: the forge's signature over the exact raw body bytes, checked
//      against that secret in constant time.
//   3. parse_event: after verification, what happened (push, pull request ...) in one
//      shape for every forge, with the GitHub-shaped payload jobs read, and why nothing
//      should run when nothing should.
//
// Nothing here reads a clock, a file or a socket: `now` is passed in.
#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/forge/forge_kind.h"

namespace sandci::agent::forge {

// Why a webhook request cannot be used; `reason` is short and fit for a 400 answer
// (it quotes no secret and at most a field name or a parser message).
struct WebhookError {
  std::string reason;
};

struct WebhookEnvelope {
  ForgeKind forge = ForgeKind::github;
  std::string event;        // the event header as sent: "push", "Merge Request Hook"
  std::string delivery_id;  // the forge's delivery id; may be empty only for GitLab
  std::string repository;   // owner/name (GitLab: project.path_with_namespace)
  std::optional<std::int64_t> project_id;  // GitLab's project.id
  nlohmann::json body;      // the decoded JSON object (form deliveries unwrapped)
};

// Reads the event name, the delivery id and the repository named in the body.
// Event header: X-GitHub-Event / X-Gitea-Event / X-Forgejo-Event / X-Gitlab-Event.
// Delivery id: X-GitHub-Delivery / X-Gitea-Delivery / X-Forgejo-Delivery; GitLab:
// webhook-id, else Idempotency-Key, else X-Gitlab-Event-UUID (webhook-id is covered by
// the signature and, like Idempotency-Key, stays the same when GitLab retries).
// The body is JSON, or with content type application/x-www-form-urlencoded a `payload=`
// field holding JSON (GitHub's and Gitea's form deliveries). The repository is
// repository.full_name (GitLab: project.path_with_namespace, plus project.id); a GitHub
// `ping` from an organization hook names none and gets an empty repository.
// Errors: missing event or delivery header, a body that is not a JSON object, no
// repository name ("no repository.full_name").
std::expected<WebhookEnvelope, WebhookError> read_envelope(ForgeKind forge,
                                                           const HeaderLookup& headers,
                                                           std::string_view raw_body,
                                                           std::string_view content_type);

enum class SignatureOutcome { ok, missing, mismatch, expired };

struct Verification {
  SignatureOutcome outcome = SignatureOutcome::missing;
  std::string reason;  // for logs; never contains the secret or the expected digest
  bool ok() const { return outcome == SignatureOutcome::ok; }
};

// GitLab signing tokens older than this, or this far in the future, are refused.
inline constexpr std::chrono::seconds kGitlabSignatureTolerance{300};

// Checks the request's signature over the exact raw body with `secret`, comparing
// fixed-size digests with CRYPTO_memcmp (no early exit on content):
//  - GitHub: X-Hub-Signature-256: sha256=<64 hex>.
//  - Gitea: X-Gitea-Signature: <64 hex> (else X-Hub-Signature-256).
//  - Forgejo: X-Forgejo-Signature, else X-Gitea-Signature (else X-Hub-Signature-256).
//  - GitLab: webhook-signature (Standard Webhooks): one or more space-separated
//    `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, any one
//    matching; the key is the secret's bytes, or for a `whsec_<base64>` secret the
//    decoded bytes. A matching signature whose webhook-timestamp is more than
//    kGitlabSignatureTolerance from `now` either way is `expired`. Without
//    webhook-signature, or when it does not match: X-Gitlab-Token must equal the secret
//    (compared as SHA-256 digests, so neither length nor content leaks).
// An empty secret verifies nothing (mismatch). A malformed header is a mismatch.
Verification verify_signature(ForgeKind forge, const HeaderLookup& headers,
                              std::string_view raw_body, std::string_view secret,
                              std::chrono::system_clock::time_point now);

enum class EventKind { ping, push, pull_request, other };

struct WebhookEvent {
  ForgeKind forge = ForgeKind::github;
  EventKind kind = EventKind::other;
  std::string event_name;   // as a workflow sees it: "push", "pull_request", "ping"...
  std::string delivery_id;
  std::string action;       // pull_request: opened, synchronize, reopened, closed ...
  std::string sha;          // 40 lowercase hex: push `after`, PR head sha
  std::string before;       // push: the previous sha (may be 40 zeros)
  std::string ref;          // refs/heads/x, refs/tags/v1, refs/pull/<n>/head,
                            // refs/merge-requests/<iid>/head
  std::string base_ref;     // PR: target branch name
  std::string head_ref;     // PR: source branch name
  std::optional<std::int64_t> number;  // PR number (GitLab: MR iid)
  std::string repository;   // owner/name of the repository the hook belongs to
  std::optional<std::int64_t> project_id;  // GitLab
  std::string clone_url;    // that repository's HTTP clone URL
  std::string head_clone_url;  // PR: where the head commit lives (a fork's URL)
  bool from_fork = false;   // PR: the head repository is not the base repository
  std::string sender;       // login of whoever caused the event
  std::string commit_message;  // head commit message when the payload has it
  std::optional<std::string> ignored;  // set: nothing should run, and why
  nlohmann::json payload;   // GitHub-shaped event for GITHUB_EVENT_PATH
};

// What happened, after verification. GitHub, Gitea and Forgejo payloads are kept as
// sent (Gitea's "synchronized" action reads "synchronize" in `action`); GitLab's are
// translated into the GitHub shape for the fields workflows commonly read (ref, before,
// after, repository.full_name/clone_url, head_commit, commits, sender, pull_request.
// number/head/base) with the original under "gitlab". GitLab tag pushes are pushes of
// refs/tags/...; merge request actions open/update/reopen/close/merge become opened/
// synchronize (an update with new commits; edited otherwise)/reopened/closed/closed.
// `ignored` is set for: deleted branches and tags, pull request actions other than
// opened/synchronize/reopened, and events that do not build ("event 'issues' is not
// built"); ping events are kind ping and ignored too.
// Errors (never exceptions): fields of the wrong JSON type, a missing ref or sha, a sha
// that is not 40 hex digits, a PR number that is not a positive integer.
std::expected<WebhookEvent, WebhookError> parse_event(const WebhookEnvelope& envelope);

}  // namespace sandci::agent::forge
