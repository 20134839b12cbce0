#include "agent/forge/signing.h"

#include "agent/forge/codec.h"

namespace sandci::agent::forge {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

void add(Headers& headers, std::string_view name, std::string value) {
  headers.emplace_back(std::string(name), std::move(value));
}

void add_github_headers(Headers& headers, std::string_view event, std::string_view delivery_id,
                        std::string_view body, std::string_view secret) {
  add(headers, "X-GitHub-Event", std::string(event));
  add(headers, "X-GitHub-Delivery", std::string(delivery_id));
  add(headers, "X-Hub-Signature", "sha1=" + hex_encode(hmac_sha1(secret, body)));
  add(headers, "X-Hub-Signature-256", "sha256=" + hex_encode(hmac_sha256(secret, body)));
}

void add_gitea_headers(Headers& headers, std::string_view event, std::string_view delivery_id,
                       std::string_view body, std::string_view secret) {
  const std::string signature = hex_encode(hmac_sha256(secret, body));
  for (std::string_view prefix : {"X-Gitea-", "X-Gogs-"}) {
    add(headers, std::string(prefix) + "Event", std::string(event));
    add(headers, std::string(prefix) + "Delivery", std::string(delivery_id));
    add(headers, std::string(prefix) + "Signature", signature);
  }
  add_github_headers(headers, event, delivery_id, body, secret);
}

}  // namespace

std::string gitlab_webhook_signature(std::string_view webhook_id, std::string_view timestamp,
                                     std::string_view body, std::string_view secret) {
  std::string key(secret);
  if (secret.starts_with("whsec_")) {
    if (auto decoded = base64_decode(secret.substr(6))) key = *decoded;
  }
  std::string content = std::string(webhook_id) + '.' + std::string(timestamp) + '.';
  content.append(body);
  return "v1," + base64_encode(hmac_sha256(key, content));
}

Headers webhook_headers(ForgeKind forge, std::string_view event, std::string_view delivery_id,
                        std::string_view body, std::string_view secret,
                        std::chrono::system_clock::time_point now, bool gitlab_signed) {
  Headers headers;
  switch (forge) {
    case ForgeKind::github:
      add_github_headers(headers, event, delivery_id, body, secret);
      break;
    case ForgeKind::forgejo:
      add(headers, "X-Forgejo-Event", std::string(event));
      add(headers, "X-Forgejo-Delivery", std::string(delivery_id));
      add(headers, "X-Forgejo-Signature", hex_encode(hmac_sha256(secret, body)));
      add_gitea_headers(headers, event, delivery_id, body, secret);
      break;
    case ForgeKind::gitea:
      add_gitea_headers(headers, event, delivery_id, body, secret);
      break;
    case ForgeKind::gitlab: {
      add(headers, "X-Gitlab-Event", std::string(event));
      add(headers, "X-Gitlab-Event-UUID", std::string(delivery_id));
      add(headers, "Idempotency-Key", std::string(delivery_id));
      if (gitlab_signed) {
        const std::string timestamp = std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
        add(headers, "webhook-id", std::string(delivery_id));
        add(headers, "webhook-timestamp", timestamp);
        add(headers, "webhook-signature",
            gitlab_webhook_signature(delivery_id, timestamp, body, secret));
      } else {
        add(headers, "X-Gitlab-Token", std::string(secret));
      }
      break;
    }
  }
  return headers;
}

}  // namespace sandci::agent::forge
