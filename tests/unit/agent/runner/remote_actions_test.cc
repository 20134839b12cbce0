// Where remote actions are fetched from, and what `sandci actions add` accepts:
// the pure parts of remote_actions.h.
#include <gtest/gtest.h>

#include "agent/runner/remote_actions.h"

namespace sandci::agent {
namespace {

TEST(ActionRepositoryUrl, KeepsTheOwnerUnderTheSource) {
  EXPECT_EQ(action_repository_url(kDefaultActionsSource, "actions", "checkout"), "https://github.com/actions/checkout");
  EXPECT_EQ(action_repository_url("https://git.example.org/mirrors", "actions", "checkout"),
            "https://git.example.org/mirrors/actions/checkout");
  EXPECT_EQ(action_repository_url("https://git.example.org/mirrors/", "acme", "tools"),
            "https://git.example.org/mirrors/acme/tools");
  EXPECT_EQ(action_repository_url("ssh://git@git.example.org:2222/mirrors", "acme", "tools"),
            "ssh://git@git.example.org:2222/mirrors/acme/tools");
}

TEST(ActionRepositoryUrl, PlaceholdersLetAFlatMirrorOrganisationNameRepositories) {
  EXPECT_EQ(action_repository_url("https://git.example.org/mirrors/{owner}-{repo}", "actions", "setup-node"),
            "https://git.example.org/mirrors/actions-setup-node");
  EXPECT_EQ(action_repository_url("https://git.example.org/gh/{repo}.git", "acme", "tools"),
            "https://git.example.org/gh/tools.git");
}

TEST(ActionsSourceProblem, AcceptsForgeUrlsAndLocalFolders) {
  for (const char* ok : {"https://github.com", "http://127.0.0.1:3000/mirrors", "git://127.0.0.1:9418",
                         "ssh://git@git.example.org/mirrors", "git@git.example.org:mirrors", "/srv/git/mirrors",
                         "https://git.example.org/mirrors/{owner}-{repo}"})
    EXPECT_EQ(actions_source_problem(ok), std::nullopt) << ok;
}

TEST(ActionsSourceProblem, RefusesCredentialsQueriesAndOtherSchemes) {
  auto token = actions_source_problem("https://x-access-token:s3cret@github.com");
  ASSERT_TRUE(token);
  EXPECT_NE(token->find("must not hold credentials"), std::string::npos) << *token;
  EXPECT_EQ(token->find("s3cret"), std::string::npos) << "never echo a secret";
  auto query = actions_source_problem("https://git.example.org/mirrors?private_token=abc");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->find("abc"), std::string::npos) << *query;
  EXPECT_TRUE(actions_source_problem("ftp://example.org/x"));
  EXPECT_TRUE(actions_source_problem("relative/folder"));
  EXPECT_TRUE(actions_source_problem(""));
}

TEST(ParseActionSpec, TakesOwnerRepoPathAndRef) {
  auto spec = parse_action_spec("actions/checkout@v4");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_EQ(spec->owner, "actions");
  EXPECT_EQ(spec->repo, "checkout");
  EXPECT_EQ(spec->ref, "v4");
  auto nested = parse_action_spec("acme/tools/.github/workflows/build.yml@release/2.x");
  ASSERT_TRUE(nested) << nested.error();
  EXPECT_EQ(nested->path, ".github/workflows/build.yml");
  EXPECT_EQ(nested->ref, "release/2.x");
}

TEST(ParseActionSpec, MalformedArgumentsSayWhatIsExpected) {
  for (const char* bad : {"acme", "acme/tools", "acme@v1", "./local@v1", "docker://alpine:3", "acme/tools@"}) {
    auto spec = parse_action_spec(bad);
    ASSERT_FALSE(spec) << bad;
    EXPECT_NE(spec.error().find("must be owner/repo@ref"), std::string::npos) << spec.error();
  }
  auto revision = parse_action_spec("acme/tools@main~2");
  ASSERT_FALSE(revision);
  EXPECT_EQ(revision.error(), "'acme/tools@main~2': 'main~2' is not a tag, branch or commit name");
  auto owner = parse_action_spec("..//tools@v1");
  EXPECT_FALSE(owner);
}

}  // namespace
}  // namespace sandci::agent
