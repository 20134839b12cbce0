#include "agent/config/agent_config.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sandci::agent::config {
namespace {

TEST(ListenAddress, ParsesIpv4AndBracketedIpv6) {
  auto v4 = parse_listen_address("0.0.0.0:9000");
  ASSERT_TRUE(v4.has_value()) << v4.error();
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 9000);
  EXPECT_EQ(v4->to_string(), "0.0.0.0:9000");
  auto v6 = parse_listen_address("[::1]:8080");
  ASSERT_TRUE(v6.has_value()) << v6.error();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:8080");
}

TEST(ListenAddress, RefusesNamesMissingPortsAndBadPorts) {
  EXPECT_EQ(parse_listen_address("localhost:8080").error(),
            "'localhost' is not an IP address: use ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
  EXPECT_EQ(parse_listen_address("127.0.0.1").error(),
            "'127.0.0.1' has no port: use ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
  EXPECT_EQ(parse_listen_address("127.0.0.1:0").error(), "'0' is not a port (1 to 65535)");
  EXPECT_EQ(parse_listen_address("127.0.0.1:65536").error(), "'65536' is not a port (1 to 65535)");
  EXPECT_EQ(parse_listen_address("127.0.0.1:80x").error(), "'80x' is not a port (1 to 65535)");
  EXPECT_EQ(parse_listen_address("::1:8080").error(),
            "an IPv6 address needs brackets: use ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
  EXPECT_FALSE(parse_listen_address("[::1]8080").has_value());
  EXPECT_FALSE(parse_listen_address("[zz::1]:8080").has_value());
}

TEST(Secret, NeverPrintsItsValue) {
  const Secret secret{"hunter2"};
  std::ostringstream out;
  out << secret;
  EXPECT_EQ(out.str(), "***");
  EXPECT_EQ(::testing::PrintToString(secret), "***");
  EXPECT_EQ(secret.reveal(), "hunter2");
}

TEST(AgentConfig, FindsRepositoriesByForgeAndNameIgnoringCase) {
  AgentConfig config;
  for (Forge forge : {Forge::kGithub, Forge::kGitea}) {
    RepositoryConfig repository;
    repository.name = "alice/hello";
    repository.forge = forge;
    config.repositories.push_back(repository);
  }
  ASSERT_NE(config.find_repository(Forge::kGitea, "Alice/Hello"), nullptr);
  EXPECT_EQ(config.find_repository(Forge::kGitea, "Alice/Hello")->forge, Forge::kGitea);
  EXPECT_EQ(config.find_repository(Forge::kGitlab, "alice/hello"), nullptr);
  EXPECT_EQ(config.find_repository(Forge::kGithub, "alice/hell"), nullptr);
}

TEST(AgentConfig, SecretValuesListsEverySecretOnce) {
  AgentConfig config;
  config.admin_token = Secret{"admin"};
  RepositoryConfig repo;
  repo.webhook_secret = Secret{"hook"};
  repo.api_token = Secret{"token"};
  repo.clone.https.emplace();
  repo.clone.https->token = "token";
  repo.secrets.push_back({"DEPLOY", Secret{"deploy"}});
  config.repositories.push_back(repo);
  EXPECT_EQ(config.secret_values(), (std::vector<std::string>{"admin", "deploy", "hook", "token"}));
}

TEST(Names, ForgesAndEventsRoundTrip) {
  for (Forge f : {Forge::kGithub, Forge::kGitea, Forge::kForgejo, Forge::kGitlab})
    EXPECT_EQ(parse_forge(to_string(f)), f);
  for (RepositoryEvent e : {RepositoryEvent::kPush, RepositoryEvent::kPullRequest, RepositoryEvent::kTag,
                            RepositoryEvent::kSchedule})
    EXPECT_EQ(parse_repository_event(to_string(e)), e);
  EXPECT_FALSE(parse_forge("bitbucket").has_value());
}

}  // namespace
}  // namespace sandci::agent::config
