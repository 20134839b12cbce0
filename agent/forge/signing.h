#pragma once
// What each forge sends with a webhook, for tests, benchmarks and a `sandci` tool that
// sends a test delivery: the event, delivery and signature headers, computed as the
// forge computes them.
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/forge/forge_kind.h"

namespace sandci::agent::forge {

// The headers `forge` sends for one delivery of `body` (the exact bytes that will be
// sent), signed with `secret`:
//  - GitHub: X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature (sha1=),
//    X-Hub-Signature-256 (sha256=).
//  - Gitea: X-Gitea-Event/-Delivery/-Signature, X-Gogs-Event/-Delivery/-Signature and
//    GitHub's four headers, as Gitea sends them all.
//  - Forgejo: X-Forgejo-Event/-Delivery/-Signature plus everything Gitea sends.
//  - GitLab: X-Gitlab-Event, X-Gitlab-Event-UUID, Idempotency-Key, and either
//    X-Gitlab-Token (the secret itself) or, when `gitlab_signed`, webhook-id,
//    webhook-timestamp (`now`) and webhook-signature (v1,<base64>; a whsec_ secret's
//    decoded bytes are the key).
// No Content-Type: the caller knows how it encoded the body.
std::vector<std::pair<std::string, std::string>> webhook_headers(
    ForgeKind forge, std::string_view event, std::string_view delivery_id,
    std::string_view body, std::string_view secret, std::chrono::system_clock::time_point now,
    bool gitlab_signed = false);

// The value of webhook-signature for one GitLab (Standard Webhooks) delivery.
std::string gitlab_webhook_signature(std::string_view webhook_id, std::string_view timestamp,
                                     std::string_view body, std::string_view secret);

}  // namespace sandci::agent::forge
