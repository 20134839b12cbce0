// Fuzz target: a webhook request as the agent receives it, through every stage the
// agent runs on it (agent/forge/webhook.h): which forge, read_envelope,
// verify_signature, parse_event, for GitHub, Gitea, Forgejo and GitLab alike.
//
// Input: an HTTP-like request, header lines `Name: value` up to the first empty line,
// then the raw body (the corpus files read as real deliveries). Without an event
// header the first byte picks the forge, so that bare bodies reach every parser.
//
// Beyond "no crash, no exception", it checks what the agent relies on:
//  - a request signed as the forge signs it, with the configured secret, verifies;
//    the same request with the body changed by one byte, or with another secret, does
//    not (for GitLab both the token and the Standard Webhooks signature);
//  - the input's own signature headers never verify against an empty secret;
//  - an event that would run has a 40-digit lowercase hex sha and a ref.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/forge/codec.h"
#include "agent/forge/forge_kind.h"
#include "agent/forge/signing.h"
#include "agent/forge/webhook.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace sandci::agent::forge;

constexpr std::string_view kSecret = "fuzz-webhook-secret";
// A fixed clock: the GitLab seeds carry webhook-timestamp 1767225600 (2026-01-01).
const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct Request {
  std::multimap<std::string, std::string> headers;  // lower-case names
  std::string body;

  HeaderLookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto found = headers.find(lower(name));
      if (found == headers.end()) return std::nullopt;
      return found->second;
    };
  }
};

Request split_request(std::string_view input) {
  Request request;
  while (!input.empty()) {
    const std::size_t end = std::min(input.find('\n'), input.size());
    std::string_view line = input.substr(0, end);
    input.remove_prefix(std::min(end + 1, input.size()));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    request.headers.emplace(lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  request.body = std::string(input);
  return request;
}

// The event and delivery id as the given headers name them (or made up), to sign
// the body again the way the forge would.
std::string header_or(const Request& request, std::initializer_list<std::string_view> names,
                      std::string fallback) {
  for (auto name : names) {
    auto found = request.headers.find(lower(name));
    if (found != request.headers.end() && !trim(found->second).empty()) return std::string(trim(found->second));
  }
  return fallback;
}

Request signed_copy(ForgeKind forge, const Request& original, std::string_view body, std::string_view secret,
                    bool gitlab_signed) {
  const std::string event = header_or(original, {"X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event",
                                                 "X-Gitlab-Event"}, "push");
  const std::string delivery = header_or(original, {"X-GitHub-Delivery", "X-Gitea-Delivery",
                                                    "X-Forgejo-Delivery", "webhook-id"}, "d-1");
  Request copy;
  copy.body = std::string(body);
  for (auto& [name, value] : webhook_headers(forge, event, delivery, body, secret, kNow, gitlab_signed))
    copy.headers.emplace(lower(name), value);
  return copy;
}

// Signing and verification agree, and a changed body or secret is refused.
void check_signature_round_trip(ForgeKind forge, const Request& request) {
  for (bool gitlab_signed : {false, true}) {
    if (gitlab_signed && forge != ForgeKind::gitlab) continue;
    const Request good = signed_copy(forge, request, request.body, kSecret, gitlab_signed);
    // Header values are sent trimmed; a delivery id or event made of white space only
    // is absent on the wire, and then GitLab's webhook-id is missing too.
    const bool blank_id = gitlab_signed && !good.lookup()("webhook-id");
    const Verification ok = verify_signature(forge, good.lookup(), good.body, kSecret, kNow);
    if (!blank_id) FUZZ_CHECK(ok.ok(), "a correctly signed delivery must verify");

    const Verification other_secret =
        verify_signature(forge, good.lookup(), good.body, "another-secret", kNow);
    FUZZ_CHECK(!other_secret.ok(), "a delivery signed with another secret must not verify");

    // GitLab's plain token does not cover the body: only signatures do.
    if (forge != ForgeKind::gitlab || gitlab_signed) {
      std::string changed = request.body;
      if (changed.empty()) changed.push_back('x'); else changed[changed.size() / 2] ^= 0x01;
      const Verification tampered = verify_signature(forge, good.lookup(), changed, kSecret, kNow);
      FUZZ_CHECK(!tampered.ok(), "a changed body must not verify");
    }
  }
}

void check_event(const WebhookEvent& event) {
  if (event.ignored || event.kind == EventKind::ping || event.kind == EventKind::other) return;
  FUZZ_CHECK(event.sha.size() == 40, "a runnable event has a 40-digit sha");
  FUZZ_CHECK(std::all_of(event.sha.begin(), event.sha.end(),
                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
             "a runnable event's sha is lowercase hex");
  FUZZ_CHECK(!event.ref.empty(), "a runnable event has a ref");
  if (event.kind == EventKind::pull_request) {
    FUZZ_CHECK(event.number && *event.number > 0, "a pull request has a positive number");
  }
}

void run_stages(ForgeKind forge, const Request& request) {
  const HeaderLookup headers = request.lookup();
  const std::string content_type = header_or(request, {"Content-Type"}, "application/json");

  const Verification unkeyed = verify_signature(forge, headers, request.body, "", kNow);
  FUZZ_CHECK(!unkeyed.ok(), "an empty secret verifies nothing");
  (void)verify_signature(forge, headers, request.body, kSecret, kNow);

  auto envelope = read_envelope(forge, headers, request.body, content_type);
  if (!envelope) {
    FUZZ_CHECK(!envelope.error().reason.empty(), "an envelope error says why");
    return;
  }
  auto event = parse_event(*envelope);
  if (!event) {
    FUZZ_CHECK(!event.error().reason.empty(), "an event error says why");
    return;
  }
  check_event(*event);
  (void)event->payload.dump();  // stored as the run's GITHUB_EVENT_PATH
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Request request = split_request(input);
  std::optional<ForgeKind> forge = detect_forge(request.lookup());
  if (!forge) forge = static_cast<ForgeKind>(size == 0 ? 0 : data[0] % 4);
  run_stages(*forge, request);
  check_signature_round_trip(*forge, request);

  // The byte codecs read header values and form bodies straight from the request.
  (void)form_decode(request.body);
  (void)base64_decode(request.body);
  (void)sha256_from_hex(request.body);
  (void)truncate_utf8(request.body, 1 + size % 140);
  if (auto decoded = base64_decode(base64_encode(request.body)))
    FUZZ_CHECK(*decoded == request.body, "base64 decodes what it encodes");
  return 0;
}
