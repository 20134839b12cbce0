#include <gtest/gtest.h>

#include <string>

#include "agent/forge/codec.h"
#include "agent/forge/webhook.h"
#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using testing::Headers;
using testing::read_fixture;

constexpr std::string_view kJson = "application/json";

TEST(ReadEnvelope, GitHubPush) {
  Headers headers{{"X-GitHub-Event", "push"},
                  {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}};
  auto envelope =
      read_envelope(ForgeKind::github, headers.lookup(), read_fixture("github/push.json"), kJson);
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->forge, ForgeKind::github);
  EXPECT_EQ(envelope->event, "push");
  EXPECT_EQ(envelope->delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  EXPECT_EQ(envelope->repository, "acme/widgets");
  EXPECT_EQ(envelope->project_id, std::nullopt);
  EXPECT_EQ(envelope->body["after"], "4e8b2c6a0d3f5e7b9c1a2d4f6e8b0c2a4d6f8e13");
}

TEST(ReadEnvelope, GitHubFormEncodedDelivery) {
  const std::string json = read_fixture("github/push.json");
  // What GitHub sends with content type application/x-www-form-urlencoded.
  std::string form = "payload=";
  for (char c : json) {
    if (c == ' ') {
      form += '+';
    } else if (std::isalnum(static_cast<unsigned char>(c))) {
      form += c;
    } else {
      form += percent_encode(std::string(1, c));
    }
  }
  Headers headers{{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-form"}};
  auto envelope = read_envelope(ForgeKind::github, headers.lookup(), form,
                                "application/x-www-form-urlencoded; charset=utf-8");
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->repository, "acme/widgets");
  EXPECT_EQ(envelope->body, nlohmann::json::parse(json));
  EXPECT_EQ(envelope->body["head_commit"]["message"],
            "Make the sprocket spin faster\n\nThe old rate was too slow for the demo.");
}

TEST(ReadEnvelope, FormBodyWithoutPayloadOrWithABadEscape) {
  Headers headers{{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d"}};
  auto none = read_envelope(ForgeKind::github, headers.lookup(), "other=1",
                            "application/x-www-form-urlencoded");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().reason, "form body has no payload field");
  auto bad = read_envelope(ForgeKind::github, headers.lookup(), "payload=%7B%2",
                           "application/x-www-form-urlencoded");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "payload field is not URL-encoded");
}

TEST(ReadEnvelope, GiteaAndForgejoUseTheirOwnHeaders) {
  Headers gitea{{"X-Gitea-Event", "push"}, {"X-Gitea-Delivery", "g-1"},
                {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "g-1"}};
  auto envelope =
      read_envelope(ForgeKind::gitea, gitea.lookup(), read_fixture("gitea/push.json"), kJson);
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->delivery_id, "g-1");
  EXPECT_EQ(envelope->repository, "acme/widgets");

  Headers forgejo{{"X-Forgejo-Event", "push"}, {"X-Forgejo-Delivery", "f-1"}};
  auto tag = read_envelope(ForgeKind::forgejo, forgejo.lookup(),
                           read_fixture("forgejo/push_tag.json"), kJson);
  ASSERT_TRUE(tag) << tag.error().reason;
  EXPECT_EQ(tag->delivery_id, "f-1");
  EXPECT_EQ(tag->repository, "acme/gadgets");
}

TEST(ReadEnvelope, GitLabProjectPathAndId) {
  Headers headers{{"X-Gitlab-Event", "Push Hook"},
                  {"X-Gitlab-Event-UUID", "uuid-1"},
                  {"Idempotency-Key", "idem-1"}};
  auto envelope =
      read_envelope(ForgeKind::gitlab, headers.lookup(), read_fixture("gitlab/push.json"), kJson);
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->event, "Push Hook");
  EXPECT_EQ(envelope->repository, "factory/line/conveyor");
  EXPECT_EQ(envelope->project_id, 321);
  EXPECT_EQ(envelope->delivery_id, "idem-1");  // stable across GitLab's retries
  headers.set("webhook-id", "wh-1");
  EXPECT_EQ(read_envelope(ForgeKind::gitlab, headers.lookup(), read_fixture("gitlab/push.json"),
                          kJson)
                ->delivery_id,
            "wh-1");
  headers.erase("webhook-id").erase("Idempotency-Key");
  EXPECT_EQ(read_envelope(ForgeKind::gitlab, headers.lookup(), read_fixture("gitlab/push.json"),
                          kJson)
                ->delivery_id,
            "uuid-1");
}

TEST(ReadEnvelope, OldGitLabWithoutADeliveryIdIsAccepted) {
  Headers headers{{"X-Gitlab-Event", "Push Hook"}};
  auto envelope =
      read_envelope(ForgeKind::gitlab, headers.lookup(), read_fixture("gitlab/push.json"), kJson);
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->delivery_id, "");
}

TEST(ReadEnvelope, MissingHeadersAreErrors) {
  auto no_event = read_envelope(ForgeKind::github, Headers{{"X-GitHub-Delivery", "d"}}.lookup(),
                                read_fixture("github/push.json"), kJson);
  ASSERT_FALSE(no_event);
  EXPECT_EQ(no_event.error().reason, "no X-GitHub-Event header");
  auto no_delivery = read_envelope(ForgeKind::gitea, Headers{{"X-Gitea-Event", "push"}}.lookup(),
                                   read_fixture("gitea/push.json"), kJson);
  ASSERT_FALSE(no_delivery);
  EXPECT_EQ(no_delivery.error().reason, "no delivery id header");
}

class MalformedBody : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(MalformedBody, IsAWebhookError) {
  const auto& [body, expected_start] = GetParam();
  Headers headers{{"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d"}};
  auto envelope = read_envelope(ForgeKind::github, headers.lookup(), body, kJson);
  ASSERT_FALSE(envelope) << body;
  EXPECT_TRUE(envelope.error().reason.starts_with(expected_start)) << envelope.error().reason;
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, MalformedBody,
    ::testing::Values(
        std::pair<std::string, std::string>{"", "body is not JSON: "},
        std::pair<std::string, std::string>{"not json", "body is not JSON: "},
        std::pair<std::string, std::string>{R"({"repository": )", "body is not JSON: "},
        std::pair<std::string, std::string>{R"([{"repository": {"full_name": "a/b"}}])",
                                            "body is not a JSON object"},
        std::pair<std::string, std::string>{R"("a/b")", "body is not a JSON object"},
        std::pair<std::string, std::string>{R"({"ref": "refs/heads/main"})",
                                            "no repository.full_name"},
        std::pair<std::string, std::string>{R"({"repository": {"full_name": 7}})",
                                            "repository.full_name is not a string"},
        std::pair<std::string, std::string>{R"({"repository": "acme/widgets"})",
                                            "no repository.full_name"},
        std::pair<std::string, std::string>{std::string(100000, '[') + std::string(100000, ']'),
                                            "body is nested too deeply"}));

TEST(ReadEnvelope, GitLabWithoutAProjectPathOrWithABadIdIsAnError) {
  Headers headers{{"X-Gitlab-Event", "Push Hook"}};
  auto none = read_envelope(ForgeKind::gitlab, headers.lookup(), R"({"object_kind":"push"})", kJson);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().reason, "no project.path_with_namespace");
  auto huge = read_envelope(
      ForgeKind::gitlab, headers.lookup(),
      R"({"project":{"path_with_namespace":"a/b","id":99999999999999999999999}})", kJson);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().reason, "project.id is not an integer");
  auto too_big = read_envelope(
      ForgeKind::gitlab, headers.lookup(),
      R"({"project":{"path_with_namespace":"a/b","id":18446744073709551615}})", kJson);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().reason, "project.id is out of range");
}

TEST(ReadEnvelope, OrganizationPingNamesNoRepository) {
  Headers headers{{"X-GitHub-Event", "ping"}, {"X-GitHub-Delivery", "p"}};
  auto envelope = read_envelope(ForgeKind::github, headers.lookup(),
                                R"({"zen":"Speak like a human.","hook_id":5,
                                    "organization":{"login":"acme"}})",
                                kJson);
  ASSERT_TRUE(envelope) << envelope.error().reason;
  EXPECT_EQ(envelope->repository, "");
}

}  // namespace
}  // namespace sandci::agent::forge
