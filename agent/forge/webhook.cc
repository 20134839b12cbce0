#include "agent/forge/webhook.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "agent/forge/codec.h"
#include "agent/forge/json_fields.h"

namespace sandci::agent::forge {
namespace {

// The header's value without surrounding white space; nullopt when absent or blank.
std::optional<std::string> header_value(const HeaderLookup& headers, std::string_view name) {
  auto value = headers(name);
  if (!value) return std::nullopt;
  std::string_view trimmed = trim(*value);
  if (trimmed.empty()) return std::nullopt;
  return std::string(trimmed);
}

std::optional<std::string> first_header(const HeaderLookup& headers,
                                        std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    if (auto value = header_value(headers, name)) return value;
  }
  return std::nullopt;
}

std::string_view event_header_name(ForgeKind forge) {
  switch (forge) {
    case ForgeKind::github: return "X-GitHub-Event";
    case ForgeKind::gitea: return "X-Gitea-Event";
    case ForgeKind::forgejo: return "X-Forgejo-Event";
    case ForgeKind::gitlab: return "X-Gitlab-Event";
  }
  return "X-GitHub-Event";
}

std::optional<std::string> delivery_id(ForgeKind forge, const HeaderLookup& headers) {
  switch (forge) {
    case ForgeKind::github: return header_value(headers, "X-GitHub-Delivery");
    case ForgeKind::gitea: return header_value(headers, "X-Gitea-Delivery");
    case ForgeKind::forgejo: return header_value(headers, "X-Forgejo-Delivery");
    case ForgeKind::gitlab:
      return first_header(headers, {"webhook-id", "Idempotency-Key", "X-Gitlab-Event-UUID"});
  }
  return std::nullopt;
}

bool is_form_encoded(std::string_view content_type) {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  std::string lower(media);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "application/x-www-form-urlencoded";
}

// The decoded `payload` field of a form-encoded body.
std::expected<std::string, WebhookError> form_payload(std::string_view body) {
  while (!body.empty()) {
    const std::size_t end = std::min(body.find('&'), body.size());
    std::string_view pair = body.substr(0, end);
    body.remove_prefix(std::min(end + 1, body.size()));
    if (pair.starts_with("payload=")) {
      auto decoded = form_decode(pair.substr(8));
      if (!decoded) return std::unexpected(WebhookError{"payload field is not URL-encoded"});
      return std::move(*decoded);
    }
  }
  return std::unexpected(WebhookError{"form body has no payload field"});
}

// --- signatures -------------------------------------------------------------------

Verification result(SignatureOutcome outcome, std::string reason) {
  return Verification{outcome, std::move(reason)};
}

Verification check_hex_signature(std::string_view header, const std::string& value,
                                 std::string_view prefix, std::string_view raw_body,
                                 std::string_view secret) {
  if (!std::string_view(value).starts_with(prefix)) {
    return result(SignatureOutcome::mismatch,
                  std::string(header) + " does not start with '" + std::string(prefix) + "'");
  }
  auto given = sha256_from_hex(std::string_view(value).substr(prefix.size()));
  if (!given) {
    return result(SignatureOutcome::mismatch,
                  std::string(header) + " is not a SHA-256 hex digest");
  }
  if (!digests_equal(*given, hmac_sha256(secret, raw_body))) {
    return result(SignatureOutcome::mismatch,
                  std::string(header) + " does not match the body and the secret");
  }
  return result(SignatureOutcome::ok, std::string(header) + " verified");
}

Verification verify_hex(const HeaderLookup& headers, std::string_view raw_body,
                        std::string_view secret,
                        std::initializer_list<std::pair<std::string_view, std::string_view>>
                            headers_and_prefixes) {
  for (const auto& [header, prefix] : headers_and_prefixes) {
    if (auto value = header_value(headers, header)) {
      return check_hex_signature(header, *value, prefix, raw_body, secret);
    }
  }
  return result(SignatureOutcome::missing,
                "no " + std::string(headers_and_prefixes.begin()->first) + " header");
}

// Standard Webhooks keys are given as whsec_<base64 of the key bytes>.
std::string signing_key(std::string_view secret) {
  if (secret.starts_with("whsec_")) {
    if (auto key = base64_decode(secret.substr(6))) return *key;
  }
  return std::string(secret);
}

std::optional<std::int64_t> parse_epoch_seconds(std::string_view text) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

Verification verify_gitlab_signature(const HeaderLookup& headers, std::string_view raw_body,
                                     std::string_view secret,
                                     std::chrono::system_clock::time_point now,
                                     const std::string& signatures) {
  auto id = header_value(headers, "webhook-id");
  auto timestamp_text = header_value(headers, "webhook-timestamp");
  if (!id || !timestamp_text) {
    return result(SignatureOutcome::missing,
                  "webhook-signature without webhook-id and webhook-timestamp");
  }
  auto timestamp = parse_epoch_seconds(*timestamp_text);
  if (!timestamp) {
    return result(SignatureOutcome::mismatch, "webhook-timestamp is not a Unix time");
  }
  std::string signed_content = *id + '.' + *timestamp_text + '.';
  signed_content.append(raw_body);
  const Sha256Digest expected = hmac_sha256(signing_key(secret), signed_content);

  // Every v1 entry is compared, so the time taken does not reveal which one matched.
  bool matched = false;
  bool any_v1 = false;
  std::string_view rest = signatures;
  while (!rest.empty()) {
    const std::size_t end = std::min(rest.find(' '), rest.size());
    std::string_view entry = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    if (!entry.starts_with("v1,")) continue;
    any_v1 = true;
    auto decoded = base64_decode(entry.substr(3));
    if (!decoded || decoded->size() != expected.size()) continue;
    Sha256Digest given{};
    std::copy(decoded->begin(), decoded->end(), given.begin());
    matched = digests_equal(given, expected) || matched;
  }
  if (!any_v1) return result(SignatureOutcome::mismatch, "webhook-signature has no v1 entry");
  if (!matched) {
    return result(SignatureOutcome::mismatch,
                  "webhook-signature does not match the body and the secret");
  }
  const auto sent = std::chrono::system_clock::time_point(std::chrono::seconds(*timestamp));
  const auto skew = std::chrono::abs(std::chrono::duration_cast<std::chrono::seconds>(now - sent));
  if (skew > kGitlabSignatureTolerance) {
    return result(SignatureOutcome::expired,
                  std::string("webhook-timestamp is ") + std::to_string(skew.count()) +
                      (sent < now ? " s old" : " s in the future"));
  }
  return result(SignatureOutcome::ok, "webhook-signature verified");
}

Verification verify_gitlab_token(const HeaderLookup& headers, std::string_view secret) {
  auto token = header_value(headers, "X-Gitlab-Token");
  if (!token) return result(SignatureOutcome::missing, "no X-Gitlab-Token header");
  // Comparing keyed digests keeps the time independent of both length and content.
  static constexpr std::string_view kCompareKey = "sandci X-Gitlab-Token comparison";
  if (!digests_equal(hmac_sha256(kCompareKey, *token), hmac_sha256(kCompareKey, secret))) {
    return result(SignatureOutcome::mismatch, "X-Gitlab-Token does not match the secret");
  }
  return result(SignatureOutcome::ok, "X-Gitlab-Token verified");
}

Verification verify_gitlab(const HeaderLookup& headers, std::string_view raw_body,
                           std::string_view secret, std::chrono::system_clock::time_point now) {
  auto signatures = header_value(headers, "webhook-signature");
  if (!signatures) return verify_gitlab_token(headers, secret);
  Verification signed_check = verify_gitlab_signature(headers, raw_body, secret, now, *signatures);
  if (signed_check.ok() || !header_value(headers, "X-Gitlab-Token")) return signed_check;
  // A hook may carry both a secret token and a signing token; the configured secret may
  // be either.
  Verification token_check = verify_gitlab_token(headers, secret);
  return token_check.ok() ? token_check : signed_check;
}

}  // namespace

std::expected<WebhookEnvelope, WebhookError> read_envelope(ForgeKind forge,
                                                           const HeaderLookup& headers,
                                                           std::string_view raw_body,
                                                           std::string_view content_type) {
  WebhookEnvelope envelope;
  envelope.forge = forge;
  auto event = header_value(headers, event_header_name(forge));
  if (!event) {
    return std::unexpected(WebhookError{"no " + std::string(event_header_name(forge)) + " header"});
  }
  envelope.event = std::move(*event);
  auto delivery = delivery_id(forge, headers);
  if (!delivery && forge != ForgeKind::gitlab) {
    return std::unexpected(WebhookError{"no delivery id header"});
  }
  envelope.delivery_id = delivery.value_or("");

  std::string form_json;
  std::string_view json_text = raw_body;
  if (is_form_encoded(content_type)) {
    auto payload = form_payload(raw_body);
    if (!payload) return std::unexpected(payload.error());
    form_json = std::move(*payload);
    json_text = form_json;
  }
  auto body = parse_json_object(json_text);
  if (!body) return std::unexpected(body.error());
  envelope.body = std::move(*body);

  if (forge == ForgeKind::gitlab) {
    auto path = required_string(envelope.body, {"project", "path_with_namespace"});
    if (!path) return std::unexpected(path.error());
    auto id = optional_integer(envelope.body, {"project", "id"});
    if (!id) return std::unexpected(id.error());
    envelope.repository = std::move(*path);
    envelope.project_id = *id;
    return envelope;
  }
  auto full_name = optional_string(envelope.body, {"repository", "full_name"});
  if (!full_name) return std::unexpected(full_name.error());
  if (!*full_name || (*full_name)->empty()) {
    if (envelope.event != "ping") {
      return std::unexpected(WebhookError{"no repository.full_name"});
    }
  } else {
    envelope.repository = std::move(**full_name);
  }
  return envelope;
}

Verification verify_signature(ForgeKind forge, const HeaderLookup& headers,
                              std::string_view raw_body, std::string_view secret,
                              std::chrono::system_clock::time_point now) {
  if (secret.empty()) {
    return result(SignatureOutcome::mismatch, "no webhook secret is configured");
  }
  switch (forge) {
    case ForgeKind::github:
      return verify_hex(headers, raw_body, secret, {{"X-Hub-Signature-256", "sha256="}});
    case ForgeKind::gitea:
      return verify_hex(headers, raw_body, secret,
                        {{"X-Gitea-Signature", ""}, {"X-Hub-Signature-256", "sha256="}});
    case ForgeKind::forgejo:
      return verify_hex(headers, raw_body, secret,
                        {{"X-Forgejo-Signature", ""},
                         {"X-Gitea-Signature", ""},
                         {"X-Hub-Signature-256", "sha256="}});
    case ForgeKind::gitlab:
      return verify_gitlab(headers, raw_body, secret, now);
  }
  return result(SignatureOutcome::missing, "unknown forge");
}

}  // namespace sandci::agent::forge
