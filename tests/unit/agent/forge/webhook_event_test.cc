#include <gtest/gtest.h>

#include <string>

#include "agent/forge/webhook.h"
#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using nlohmann::json;
using testing::Headers;
using testing::read_fixture;

Headers event_headers(ForgeKind forge, const std::string& event) {
  switch (forge) {
    case ForgeKind::github: return Headers{{"X-GitHub-Event", event}, {"X-GitHub-Delivery", "d"}};
    case ForgeKind::gitea: return Headers{{"X-Gitea-Event", event}, {"X-Gitea-Delivery", "d"}};
    case ForgeKind::forgejo:
      return Headers{{"X-Forgejo-Event", event}, {"X-Forgejo-Delivery", "d"}};
    case ForgeKind::gitlab: return Headers{{"X-Gitlab-Event", event}, {"X-Gitlab-Event-UUID", "d"}};
  }
  return {};
}

std::expected<WebhookEvent, WebhookError> parse_body(ForgeKind forge, const std::string& event,
                                                     const std::string& body) {
  auto envelope = read_envelope(forge, event_headers(forge, event).lookup(), body,
                                "application/json");
  if (!envelope) return std::unexpected(envelope.error());
  return parse_event(*envelope);
}

WebhookEvent parse_fixture(ForgeKind forge, const std::string& event, const std::string& fixture) {
  auto parsed = parse_body(forge, event, read_fixture(fixture));
  if (!parsed) throw std::runtime_error(fixture + ": " + parsed.error().reason);
  return *parsed;
}

// --- GitHub ----------------------------------------------------------------------

TEST(GitHubEvent, Push) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "push", "github/push.json");
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.event_name, "push");
  EXPECT_EQ(e.delivery_id, "d");
  EXPECT_EQ(e.sha, "4e8b2c6a0d3f5e7b9c1a2d4f6e8b0c2a4d6f8e13");
  EXPECT_EQ(e.before, "9a1f3c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f01");
  EXPECT_EQ(e.ref, "refs/heads/main");
  EXPECT_EQ(e.repository, "acme/widgets");
  EXPECT_EQ(e.clone_url, "https://github.com/acme/widgets.git");
  EXPECT_EQ(e.sender, "dora");
  EXPECT_EQ(e.commit_message,
            "Make the sprocket spin faster\n\nThe old rate was too slow for the demo.");
  EXPECT_EQ(e.ignored, std::nullopt);
  EXPECT_FALSE(e.from_fork);
  EXPECT_EQ(e.payload, json::parse(read_fixture("github/push.json")));  // as sent
}

TEST(GitHubEvent, TagPush) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "push", "github/tag_push.json");
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.ref, "refs/tags/v1.4.0");
  EXPECT_EQ(e.sha, "4e8b2c6a0d3f5e7b9c1a2d4f6e8b0c2a4d6f8e13");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GitHubEvent, BranchDeletionIsIgnored) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "push", "github/branch_delete.json");
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.ignored, "branch 'feature/old-gears' deleted");
}

TEST(GitHubEvent, TagDeletionWithoutTheDeletedFlagIsIgnored) {
  json body = json::parse(read_fixture("github/tag_push.json"));
  body["before"] = body["after"];
  body["after"] = std::string(40, '0');
  body.erase("deleted");
  auto e = parse_body(ForgeKind::github, "push", body.dump());
  ASSERT_TRUE(e) << e.error().reason;
  EXPECT_EQ(e->ignored, "tag 'v1.4.0' deleted");
}

TEST(GitHubEvent, PullRequestOpened) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "pull_request", "github/pull_request_opened.json");
  EXPECT_EQ(e.kind, EventKind::pull_request);
  EXPECT_EQ(e.event_name, "pull_request");
  EXPECT_EQ(e.action, "opened");
  EXPECT_EQ(e.number, 42);
  EXPECT_EQ(e.sha, "b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d2");
  EXPECT_EQ(e.ref, "refs/pull/42/head");
  EXPECT_EQ(e.head_ref, "feature/reverse");
  EXPECT_EQ(e.base_ref, "main");
  EXPECT_EQ(e.clone_url, "https://github.com/acme/widgets.git");
  EXPECT_EQ(e.head_clone_url, "https://github.com/acme/widgets.git");
  EXPECT_FALSE(e.from_fork);
  EXPECT_EQ(e.sender, "eli");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GitHubEvent, ForkPullRequestSynchronize) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "pull_request", "github/pull_request_fork.json");
  EXPECT_EQ(e.action, "synchronize");
  EXPECT_EQ(e.number, 57);
  EXPECT_TRUE(e.from_fork);
  EXPECT_EQ(e.head_clone_url, "https://github.com/outsider/widgets.git");
  EXPECT_EQ(e.clone_url, "https://github.com/acme/widgets.git");
  EXPECT_EQ(e.repository, "acme/widgets");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GitHubEvent, PullRequestFromADeletedForkIsAFork) {
  json body = json::parse(read_fixture("github/pull_request_fork.json"));
  body["pull_request"]["head"]["repo"] = nullptr;
  auto e = parse_body(ForgeKind::github, "pull_request", body.dump());
  ASSERT_TRUE(e) << e.error().reason;
  EXPECT_TRUE(e->from_fork);
  EXPECT_EQ(e->head_clone_url, "");
}

TEST(GitHubEvent, PullRequestActionsThatDoNotBuild) {
  json body = json::parse(read_fixture("github/pull_request_opened.json"));
  for (std::string action : {"closed", "labeled", "edited", "assigned"}) {
    body["action"] = action;
    auto e = parse_body(ForgeKind::github, "pull_request", body.dump());
    ASSERT_TRUE(e) << e.error().reason;
    EXPECT_EQ(e->ignored, "pull request action '" + action + "' is not built");
  }
  body["action"] = "reopened";
  EXPECT_EQ(parse_body(ForgeKind::github, "pull_request", body.dump())->ignored, std::nullopt);
}

TEST(GitHubEvent, Ping) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "ping", "github/ping.json");
  EXPECT_EQ(e.kind, EventKind::ping);
  EXPECT_EQ(e.event_name, "ping");
  EXPECT_EQ(e.ignored, "ping");
}

TEST(GitHubEvent, EventsThatDoNotBuild) {
  WebhookEvent e = parse_fixture(ForgeKind::github, "issues", "github/issues.json");
  EXPECT_EQ(e.kind, EventKind::other);
  EXPECT_EQ(e.event_name, "issues");
  EXPECT_EQ(e.ignored, "event 'issues' is not built");
  EXPECT_EQ(e.sender, "eli");
}

// --- Gitea and Forgejo -----------------------------------------------------------

TEST(GiteaEvent, Push) {
  WebhookEvent e = parse_fixture(ForgeKind::gitea, "push", "gitea/push.json");
  EXPECT_EQ(e.forge, ForgeKind::gitea);
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.ref, "refs/heads/develop");
  EXPECT_EQ(e.sha, "2c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a11");
  EXPECT_EQ(e.clone_url, "https://gitea.example.org/acme/widgets.git");
  EXPECT_EQ(e.sender, "fay");
  EXPECT_EQ(e.commit_message, "Tune the flywheel\n");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GiteaEvent, BranchDeletion) {
  WebhookEvent e = parse_fixture(ForgeKind::gitea, "push", "gitea/branch_delete.json");
  EXPECT_EQ(e.ignored, "branch 'spike' deleted");
}

TEST(GiteaEvent, SynchronizedPullRequestReadsAsSynchronize) {
  WebhookEvent e =
      parse_fixture(ForgeKind::gitea, "pull_request", "gitea/pull_request_synchronized.json");
  EXPECT_EQ(e.action, "synchronize");
  EXPECT_EQ(e.number, 9);
  EXPECT_EQ(e.sha, "2c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a11");  // lowercased
  EXPECT_EQ(e.ref, "refs/pull/9/head");
  EXPECT_EQ(e.head_ref, "develop");
  EXPECT_FALSE(e.from_fork);
  EXPECT_EQ(e.ignored, std::nullopt);
  EXPECT_EQ(e.payload["action"], "synchronized");  // the payload stays as sent
}

TEST(GiteaEvent, ReviewEventsAreNotPullRequestBuilds) {
  auto e = parse_body(ForgeKind::gitea, "pull_request_approved",
                      read_fixture("gitea/pull_request_synchronized.json"));
  ASSERT_TRUE(e) << e.error().reason;
  EXPECT_EQ(e->kind, EventKind::other);
  EXPECT_EQ(e->ignored, "event 'pull_request_approved' is not built");
}

TEST(ForgejoEvent, TagPush) {
  WebhookEvent e = parse_fixture(ForgeKind::forgejo, "push", "forgejo/push_tag.json");
  EXPECT_EQ(e.forge, ForgeKind::forgejo);
  EXPECT_EQ(e.ref, "refs/tags/v0.9.0");
  EXPECT_EQ(e.sha, "6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a47");
  EXPECT_EQ(e.commit_message, "Release 0.9.0\n");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(ForgejoEvent, ForkPullRequest) {
  WebhookEvent e = parse_fixture(ForgeKind::forgejo, "pull_request", "forgejo/pull_request_fork.json");
  EXPECT_EQ(e.action, "opened");
  EXPECT_TRUE(e.from_fork);
  EXPECT_EQ(e.head_clone_url, "https://forgejo.example.org/hana/gadgets.git");
  EXPECT_EQ(e.clone_url, "https://forgejo.example.org/acme/gadgets.git");
  EXPECT_EQ(e.ref, "refs/pull/3/head");
  EXPECT_EQ(e.sender, "hana");
}

// --- GitLab ----------------------------------------------------------------------

TEST(GitLabEvent, PushIsTranslatedIntoTheGitHubShape) {
  WebhookEvent e = parse_fixture(ForgeKind::gitlab, "Push Hook", "gitlab/push.json");
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.event_name, "push");
  EXPECT_EQ(e.ref, "refs/heads/main");
  EXPECT_EQ(e.sha, "b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d1");
  EXPECT_EQ(e.repository, "factory/line/conveyor");
  EXPECT_EQ(e.project_id, 321);
  EXPECT_EQ(e.clone_url, "https://gitlab.example.org/factory/line/conveyor.git");
  EXPECT_EQ(e.sender, "ivy");
  EXPECT_EQ(e.commit_message, "Slow the belt down near the guards\n");
  EXPECT_EQ(e.ignored, std::nullopt);

  EXPECT_EQ(e.payload["ref"], "refs/heads/main");
  EXPECT_EQ(e.payload["before"], "a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c0");
  EXPECT_EQ(e.payload["after"], e.sha);
  EXPECT_EQ(e.payload["repository"]["full_name"], "factory/line/conveyor");
  EXPECT_EQ(e.payload["repository"]["name"], "conveyor");
  EXPECT_EQ(e.payload["repository"]["owner"]["login"], "factory/line");
  EXPECT_EQ(e.payload["repository"]["clone_url"], e.clone_url);
  EXPECT_EQ(e.payload["head_commit"]["id"], e.sha);
  EXPECT_EQ(e.payload["head_commit"]["author"]["name"], "Ivy Irving");
  EXPECT_EQ(e.payload["commits"].size(), 2u);
  EXPECT_EQ(e.payload["sender"]["login"], "ivy");
  EXPECT_EQ(e.payload["gitlab"], json::parse(read_fixture("gitlab/push.json")));
}

TEST(GitLabEvent, TagPushBuildsTheTaggedCommit) {
  WebhookEvent e = parse_fixture(ForgeKind::gitlab, "Tag Push Hook", "gitlab/tag_push.json");
  EXPECT_EQ(e.kind, EventKind::push);
  EXPECT_EQ(e.event_name, "push");
  EXPECT_EQ(e.ref, "refs/tags/v2.0.0");
  // checkout_sha (the commit), not `after` (the annotated tag object).
  EXPECT_EQ(e.sha, "b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d1");
  EXPECT_EQ(e.payload["created"], true);
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GitLabEvent, BranchDeletion) {
  WebhookEvent e = parse_fixture(ForgeKind::gitlab, "Push Hook", "gitlab/branch_delete.json");
  EXPECT_EQ(e.ignored, "branch 'old-rollers' deleted");
  EXPECT_EQ(e.payload["deleted"], true);
}

TEST(GitLabEvent, MergeRequestOpen) {
  WebhookEvent e =
      parse_fixture(ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json");
  EXPECT_EQ(e.kind, EventKind::pull_request);
  EXPECT_EQ(e.event_name, "pull_request");
  EXPECT_EQ(e.action, "opened");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.sha, "f7b9d1a3c5e7f9b1d3a5c7e9f1b3d5a7c9e1f3b5");
  EXPECT_EQ(e.ref, "refs/merge-requests/12/head");
  EXPECT_EQ(e.head_ref, "belt-sensors");
  EXPECT_EQ(e.base_ref, "main");
  EXPECT_FALSE(e.from_fork);
  EXPECT_EQ(e.sender, "jon");
  EXPECT_EQ(e.commit_message, "Read the belt speed from two sensors\n");
  EXPECT_EQ(e.ignored, std::nullopt);
  EXPECT_EQ(e.payload["action"], "opened");
  EXPECT_EQ(e.payload["number"], 12);
  EXPECT_EQ(e.payload["pull_request"]["number"], 12);
  EXPECT_EQ(e.payload["pull_request"]["head"]["sha"], e.sha);
  EXPECT_EQ(e.payload["pull_request"]["head"]["ref"], "belt-sensors");
  EXPECT_EQ(e.payload["pull_request"]["base"]["ref"], "main");
  EXPECT_EQ(e.payload["pull_request"]["base"]["repo"]["full_name"], "factory/line/conveyor");
  EXPECT_EQ(e.payload["gitlab"]["object_attributes"]["action"], "open");
}

TEST(GitLabEvent, ForkMergeRequestUpdateWithNewCommitsIsSynchronize) {
  WebhookEvent e = parse_fixture(ForgeKind::gitlab, "Merge Request Hook",
                                 "gitlab/merge_request_update_fork.json");
  EXPECT_EQ(e.action, "synchronize");
  EXPECT_TRUE(e.from_fork);
  EXPECT_EQ(e.head_clone_url, "https://gitlab.example.org/kim/conveyor.git");
  EXPECT_EQ(e.clone_url, "https://gitlab.example.org/factory/line/conveyor.git");
  EXPECT_EQ(e.payload["pull_request"]["head"]["repo"]["full_name"], "kim/conveyor");
  EXPECT_EQ(e.ignored, std::nullopt);
}

TEST(GitLabEvent, MergeRequestActionsMapToGitHubNames) {
  json body = json::parse(read_fixture("gitlab/merge_request_update_fork.json"));
  struct Case {
    std::string gitlab;
    bool oldrev;
    std::string github;
    bool builds;
  };
  for (const Case& c : {Case{"reopen", false, "reopened", true},
                        Case{"update", false, "edited", false},
                        Case{"close", false, "closed", false},
                        Case{"merge", false, "closed", false},
                        Case{"approved", false, "approved", false}}) {
    body["object_attributes"]["action"] = c.gitlab;
    if (!c.oldrev) body["object_attributes"].erase("oldrev");
    auto e = parse_body(ForgeKind::gitlab, "Merge Request Hook", body.dump());
    ASSERT_TRUE(e) << e.error().reason;
    EXPECT_EQ(e->action, c.github) << c.gitlab;
    EXPECT_EQ(e->ignored.has_value(), !c.builds) << c.gitlab;
    EXPECT_EQ(e->payload["pull_request"]["merged"], c.gitlab == "merge");
  }
}

TEST(GitLabEvent, OtherHooksDoNotBuild) {
  WebhookEvent e = parse_fixture(ForgeKind::gitlab, "Issue Hook", "gitlab/issue.json");
  EXPECT_EQ(e.kind, EventKind::other);
  EXPECT_EQ(e.ignored, "event 'Issue Hook' is not built");
  EXPECT_EQ(e.sender, "jon");
}

// --- malformed payloads ------------------------------------------------------------

struct Malformed {
  ForgeKind forge;
  std::string event;
  std::string fixture;
  std::vector<std::string> path;  // field to replace
  json value;                     // replacement (discarded: remove the field)
  std::string reason;
};

class MalformedEvent : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedEvent, IsAWebhookErrorNamingTheField) {
  const Malformed& m = GetParam();
  json body = json::parse(read_fixture(m.fixture));
  json* node = &body;
  for (std::size_t i = 0; i + 1 < m.path.size(); ++i) node = &(*node)[m.path[i]];
  if (m.value.is_discarded()) {
    node->erase(m.path.back());
  } else {
    (*node)[m.path.back()] = m.value;
  }
  auto e = parse_body(m.forge, m.event, body.dump());
  ASSERT_FALSE(e) << "accepted " << body.dump();
  EXPECT_EQ(e.error().reason, m.reason);
}

const json kRemove = json::value_t::discarded;

INSTANTIATE_TEST_SUITE_P(
    Fields, MalformedEvent,
    ::testing::Values(
        Malformed{ForgeKind::github, "push", "github/push.json", {"after"}, kRemove, "no after"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"after"}, 42,
                  "after is not a string"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"after"}, "4e8b2c6a",
                  "after is not a 40-digit hex sha"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"after"},
                  "4e8b2c6a0d3f5e7b9c1a2d4f6e8b0c2a4d6f8e1z", "after is not a 40-digit hex sha"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"ref"}, kRemove, "no ref"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"ref"}, json::array(),
                  "ref is not a string"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"deleted"}, "no",
                  "deleted is not a boolean"},
        Malformed{ForgeKind::github, "push", "github/push.json", {"head_commit", "message"}, 3.5,
                  "head_commit.message is not a string"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json", {"number"},
                  "42", "number is not an integer"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json", {"number"},
                  1e300, "number is not an integer"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json", {"number"},
                  -1, "number is not positive"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json",
                  {"pull_request", "head", "sha"}, kRemove, "no pull_request.head.sha"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json",
                  {"pull_request", "head"}, "feature/reverse", "no pull_request.head.sha"},
        Malformed{ForgeKind::github, "pull_request", "github/pull_request_opened.json",
                  {"action"}, kRemove, "no action"},
        Malformed{ForgeKind::gitea, "pull_request", "gitea/pull_request_synchronized.json",
                  {"pull_request", "base", "ref"}, kRemove, "no pull_request.base.ref"},
        Malformed{ForgeKind::gitlab, "Push Hook", "gitlab/push.json", {"checkout_sha"}, "abc",
                  "checkout_sha is not a 40-digit hex sha"},
        Malformed{ForgeKind::gitlab, "Push Hook", "gitlab/push.json", {"commits"}, "many",
                  "commits is not an array"},
        Malformed{ForgeKind::gitlab, "Push Hook", "gitlab/push.json", {"object_kind"}, kRemove,
                  "no object_kind"},
        Malformed{ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json",
                  {"object_attributes", "iid"}, kRemove, "no object_attributes.iid"},
        Malformed{ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json",
                  {"object_attributes", "iid"}, json::parse("123456789012345678901234567890"),
                  "object_attributes.iid is not an integer"},
        Malformed{ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json",
                  {"object_attributes", "last_commit"}, nullptr,
                  "no object_attributes.last_commit.id"},
        Malformed{ForgeKind::gitlab, "Merge Request Hook", "gitlab/merge_request_open.json",
                  {"object_attributes", "source_project_id"}, true,
                  "object_attributes.source_project_id is not an integer"}));

TEST(ParseEvent, AnEnvelopeWhoseBodyIsNotAnObjectIsAnError) {
  WebhookEnvelope envelope;
  envelope.event = "push";
  envelope.body = json::array();
  auto e = parse_event(envelope);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().reason, "body is not a JSON object");
}

}  // namespace
}  // namespace sandci::agent::forge
