// The `actions:` section of the agent's configuration: where remote actions come
// from and with which credentials.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config/config_loader.h"
#include "config_test_support.h"

namespace sandci::agent::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // config_test_support.h: ConfigDir, kMinimal, MinimalConfigTest

class ActionsConfigTest : public MinimalConfigTest {
 protected:
  ActionsConfigTest() {
    dir.credential("mirror-token", "mirror-token-value");
  }
};

TEST_F(ActionsConfigTest, DefaultsToThePublicGithubAnonymously) {
  auto loaded = dir.load(kMinimal);
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->actions.source, "https://github.com");
  EXPECT_FALSE(loaded.config->actions.clone.https.has_value());
  EXPECT_FALSE(loaded.config->actions.clone.ssh.has_value());

  loaded = dir.load(std::string(kMinimal) + "actions:\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->actions.source, "https://github.com");
}

TEST_F(ActionsConfigTest, AMirrorOrganisationWithAToken) {
  auto loaded = dir.load(std::string(kMinimal) +
                         "actions:\n"
                         "  source: https://git.example.org/mirrors\n"
                         "  clone:\n"
                         "    https_token: {credential: mirror-token}\n"
                         "    https_username: ci-bot\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const auto& actions = loaded.config->actions;
  EXPECT_EQ(actions.source, "https://git.example.org/mirrors");
  ASSERT_TRUE(actions.clone.https.has_value());
  EXPECT_EQ(actions.clone.https->token, "mirror-token-value");
  EXPECT_EQ(actions.clone.https->username, "ci-bot");
  // The token is masked in logs like every other secret.
  EXPECT_THAT(loaded.config->secret_values(), ::testing::Contains("mirror-token-value"));
}

TEST_F(ActionsConfigTest, OtherSourceForms) {
  for (const char* source : {"git://127.0.0.1:9418", "ssh://git@git.example.org/mirrors", "/srv/git/mirrors",
                             "https://git.example.org/mirrors/{owner}-{repo}"}) {
    auto loaded = dir.load(std::string(kMinimal) + "actions:\n  source: " + source + "\n");
    ASSERT_TRUE(loaded.ok()) << source << ": " << ::testing::PrintToString(ConfigDir::errors(loaded));
    EXPECT_EQ(loaded.config->actions.source, source);
  }
}

TEST_F(ActionsConfigTest, ErrorsAtTheValueWithDidYouMean) {
  auto loaded = dir.load(std::string(kMinimal) +
                         "actions:\n"
                         "  sources: https://github.com\n"
                         "  clone:\n"
                         "    ssh_key: {file: missing.key}\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(8, 3, "unknown key 'sources' in 'actions' (did you mean 'source'?)"),
                          dir.at(10, 5, "'ssh_key' needs 'known_hosts': without it every SSH host is refused"),
                          dir.at(10, 21, "cannot read " + (dir.path() / "missing.key").string() +
                                             ": No such file or directory")));

  loaded = dir.load(std::string(kMinimal) + "actoins:\n  source: https://github.com\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(HasSubstr(":7:1: error: unknown key 'actoins' in the configuration (did you mean "
                                    "'actions'?)")));

  loaded = dir.load(std::string(kMinimal) + "actions: https://github.com\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(HasSubstr(":7:10: error: 'actions' must be a mapping such as {source: https://github.com}")));
}

TEST_F(ActionsConfigTest, BadSourcesAreRefusedWithoutEchoingSecrets) {
  auto loaded = dir.load(std::string(kMinimal) + "actions:\n  source: https://bot:hunter2@git.example.org/mirrors\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(8, 11, "'source' must not hold credentials: use actions.clone.https_token")));
  EXPECT_THAT(::testing::PrintToString(ConfigDir::errors(loaded)), Not(HasSubstr("hunter2")));

  loaded = dir.load(std::string(kMinimal) + "actions:\n  source: https://git.example.org/m?private_token=abc\n");
  EXPECT_THAT(ConfigDir::errors(loaded), ElementsAre(dir.at(8, 11, "'source' must not have a query or fragment")));

  loaded = dir.load(std::string(kMinimal) + "actions:\n  source: ftp://example.org/x\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(8, 11,
                                 "'source' must be an https, ssh or git URL (or an absolute folder) under which "
                                 "owner/repo is found, such as https://github.com, not 'ftp://example.org/x'")));

  loaded = dir.load(std::string(kMinimal) + "actions:\n  source: mirrors\n");
  EXPECT_FALSE(loaded.ok());
}

}  // namespace
}  // namespace sandci::agent::config
