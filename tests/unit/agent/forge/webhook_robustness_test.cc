// Every field of every fixture replaced by values of every other JSON type: parsing must
// answer with an event or a WebhookError, never let a nlohmann exception escape.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "agent/forge/webhook.h"
#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using nlohmann::json;
using testing::read_fixture;

struct Fixture {
  ForgeKind forge;
  std::string event;
  std::string file;
};

const std::vector<Fixture> kFixtures = {
    {ForgeKind::github, "push", "github/push.json"},
    {ForgeKind::github, "push", "github/branch_delete.json"},
    {ForgeKind::github, "pull_request", "github/pull_request_opened.json"},
    {ForgeKind::github, "pull_request", "github/pull_request_fork.json"},
    {ForgeKind::github, "ping", "github/ping.json"},
    {ForgeKind::gitea, "push", "gitea/push.json"},
    {ForgeKind::gitea, "pull_request", "gitea/pull_request_synchronized.json"},
    {ForgeKind::forgejo, "pull_request", "forgejo/pull_request_fork.json"},
    {ForgeKind::gitlab, "Push Hook", "gitlab/push.json"},
    {ForgeKind::gitlab, "Tag Push Hook", "gitlab/tag_push.json"},
    {ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json"},
    {ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_update_fork.json"},
};

const std::vector<json> kReplacements = {
    nullptr, true, -1, 0, json::parse("18446744073709551615"), 1.5, json::parse("1e308"),
    "", "x", json::array(), json::array({1, "a"}), json::object(), json{{"id", 1}}};

// Calls `visit` with a JSON pointer to every value inside `node`.
void for_each_path(const json& node, const json::json_pointer& here,
                   const std::function<void(const json::json_pointer&)>& visit) {
  visit(here);
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) for_each_path(child, here / key, visit);
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) for_each_path(node[i], here / i, visit);
  }
}

WebhookEnvelope envelope_for(const Fixture& fixture, json body) {
  WebhookEnvelope envelope;
  envelope.forge = fixture.forge;
  envelope.event = fixture.event;
  envelope.delivery_id = "d";
  envelope.repository = "acme/widgets";
  envelope.body = std::move(body);
  return envelope;
}

TEST(WebhookRobustness, AnyFieldOfAnyTypeGivesAnEventOrAnError) {
  std::size_t cases = 0;
  std::size_t errors = 0;
  for (const Fixture& fixture : kFixtures) {
    const json original = json::parse(read_fixture(fixture.file));
    for_each_path(original, json::json_pointer(), [&](const json::json_pointer& path) {
      if (path.empty()) return;
      for (const json& replacement : kReplacements) {
        json body = original;
        body[path] = replacement;
        ++cases;
        std::expected<WebhookEvent, WebhookError> parsed = std::unexpected(WebhookError{});
        ASSERT_NO_THROW(parsed = parse_event(envelope_for(fixture, body)))
            << fixture.file << " " << path.to_string() << " = " << replacement.dump();
        if (!parsed) {
          ++errors;
          EXPECT_FALSE(parsed.error().reason.empty());
        } else {
          // Whatever was accepted is usable: a 40-digit sha and a payload that serializes.
          EXPECT_TRUE(parsed->sha.empty() || parsed->sha.size() == 40) << path.to_string();
          EXPECT_NO_THROW((void)parsed->payload.dump());
        }
      }
    });
  }
  EXPECT_GT(cases, 1000u);
  EXPECT_GT(errors, 100u);  // the required fields were hit
}

TEST(WebhookRobustness, TruncatedBodiesAreRefused) {
  // A body cut short (a dropped connection, a proxy limit) is never valid JSON.
  const std::string body = read_fixture("gitlab/merge_request_open.json");
  testing::Headers headers{{"X-Gitlab-Event", "Merge Request Hook"}};
  for (std::size_t length = 0; length < body.size(); length += 7) {
    auto envelope = read_envelope(ForgeKind::gitlab, headers.lookup(), body.substr(0, length),
                                  "application/json");
    ASSERT_FALSE(envelope) << length;
  }
}

}  // namespace
}  // namespace sandci::agent::forge
