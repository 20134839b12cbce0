#include "agent/forge/forge_kind.h"

#include <gtest/gtest.h>

#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using testing::Headers;

TEST(ForgeKind, NamesRoundTrip) {
  for (ForgeKind kind :
       {ForgeKind::github, ForgeKind::gitea, ForgeKind::forgejo, ForgeKind::gitlab}) {
    EXPECT_EQ(parse_forge_kind(to_string(kind)), kind);
  }
  EXPECT_EQ(parse_forge_kind("GitLab"), ForgeKind::gitlab);
  EXPECT_EQ(parse_forge_kind("bitbucket"), std::nullopt);
  EXPECT_EQ(parse_forge_kind(""), std::nullopt);
}

TEST(DetectForge, ForgejoWinsOverTheGiteaAndGitHubHeadersItAlsoSends) {
  Headers headers{{"X-Forgejo-Event", "push"},
                  {"X-Gitea-Event", "push"},
                  {"X-Gogs-Event", "push"},
                  {"X-GitHub-Event", "push"}};
  EXPECT_EQ(detect_forge(headers.lookup()), ForgeKind::forgejo);
}

TEST(DetectForge, GiteaWinsOverTheGitHubHeadersItAlsoSends) {
  Headers headers{{"x-gitea-event", "push"}, {"x-github-event", "push"}};
  EXPECT_EQ(detect_forge(headers.lookup()), ForgeKind::gitea);
}

TEST(DetectForge, GitLabAndGitHub) {
  EXPECT_EQ(detect_forge(Headers{{"X-Gitlab-Event", "Push Hook"}}.lookup()), ForgeKind::gitlab);
  EXPECT_EQ(detect_forge(Headers{{"X-GitHub-Event", "ping"}}.lookup()), ForgeKind::github);
}

TEST(DetectForge, NoEventHeaderIsNoForge) {
  EXPECT_EQ(detect_forge(Headers{{"X-Hub-Signature-256", "sha256=00"}}.lookup()), std::nullopt);
  EXPECT_EQ(detect_forge(Headers{}.lookup()), std::nullopt);
}

}  // namespace
}  // namespace sandci::agent::forge
