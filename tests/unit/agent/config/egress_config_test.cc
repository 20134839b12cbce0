// Network egress in the agent's configuration (issue 14): a repository's
// `egress:` grant, `egress_hosts_file` and `egress_netns`; every bad value refused
// at the value with a message that names the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "agent/config/config_loader.h"
#include "config_test_support.h"

namespace sandci::agent::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing;  // config_test_support.h: ConfigDir, kMinimal, MinimalConfigTest

class EgressConfigTest : public MinimalConfigTest {
 protected:
  LoadedConfig load(const std::string& extra) { return dir.load(std::string(kMinimal) + extra); }
  std::vector<std::string> errors_of(const std::string& extra) { return ConfigDir::errors(load(extra)); }
};

TEST_F(EgressConfigTest, NoGrantMeansNoNetwork) {
  auto loaded = load("");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_FALSE(loaded.config->repositories.at(0).egress.has_value());
  EXPECT_TRUE(loaded.config->egress_hosts_file.empty());
  EXPECT_TRUE(loaded.config->egress_netns.empty());
}

TEST_F(EgressConfigTest, EveryKeyOfAGrantIsRead) {
  auto loaded = load(
      "    egress:\n"
      "      allow: [packages.example.org, \"*.Mirror.Example.net\", pkgs.example.net.]\n"
      "      ports: [443, 8443]\n"
      "      max_mib: 2048\n"
      "      max_connections: 8\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const auto& grant = loaded.config->repositories.at(0).egress;
  ASSERT_TRUE(grant.has_value());
  // Lower-cased, the trailing dot dropped: as the proxy compares them.
  EXPECT_EQ(grant->hosts, (std::vector<std::string>{"packages.example.org", "*.mirror.example.net", "pkgs.example.net"}));
  EXPECT_EQ(grant->ports, (std::vector<std::uint16_t>{443, 8443}));
  EXPECT_EQ(grant->max_bytes, std::optional<std::uint64_t>(2048ull << 20));
  EXPECT_EQ(grant->max_connections, 8);
}

TEST_F(EgressConfigTest, AGrantWithOnlyAllowTakesTheDefaults) {
  auto loaded = load("    egress: {allow: [files.example.org]}\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const auto& grant = loaded.config->repositories.at(0).egress;
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->hosts, std::vector<std::string>{"files.example.org"});
  EXPECT_EQ(grant->ports, (std::vector<std::uint16_t>{80, 443}));
  EXPECT_FALSE(grant->max_bytes.has_value());
  EXPECT_EQ(grant->max_connections, 32);
}

TEST_F(EgressConfigTest, AGrantIsPerRepository) {
  auto loaded = load(
      "    egress: {allow: [files.example.org]}\n"
      "  - name: bob/offline\n"
      "    forge: github\n"
      "    webhook_secret: {credential: hook}\n"
      "    api_token: {credential: token}\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_TRUE(loaded.config->find_repository(Forge::kGithub, "alice/hello")->egress.has_value());
  EXPECT_FALSE(loaded.config->find_repository(Forge::kGithub, "bob/offline")->egress.has_value());
}

TEST_F(EgressConfigTest, WrongShapesAndMissingAllow) {
  EXPECT_THAT(errors_of("    egress: yes\n"),
              ElementsAre(dir.at(7, 13, "'egress' must be a mapping such as {allow: [packages.example.org], ports: [443]}, "
                                        "not 'yes'")));
  EXPECT_THAT(errors_of("    egress: [packages.example.org]\n"),
              ElementsAre(HasSubstr(":7:13: error: 'egress' must be a mapping such as")));
  EXPECT_THAT(errors_of("    egress:\n"),
              ElementsAre(dir.at(7, 5, "'egress' needs 'allow': the host names (or *.domain patterns) jobs may reach")));
  EXPECT_THAT(errors_of("    egress: {ports: [443]}\n"),
              ElementsAre(HasSubstr(":7:13: error: 'egress' needs 'allow'")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], port: [443]}\n"),
              ElementsAre(HasSubstr(":7:38: error: unknown key 'port' in 'egress' (did you mean 'ports'?)")));
}

TEST_F(EgressConfigTest, AllowMustBeANonEmptyListOfHostNames) {
  EXPECT_THAT(errors_of("    egress: {allow: packages.example.org}\n"),
              ElementsAre(dir.at(7, 21, "'allow' must be a list of host names such as packages.example.org or "
                                        "*.example.org, not 'packages.example.org'")));
  EXPECT_THAT(errors_of("    egress: {allow: []}\n"),
              ElementsAre(HasSubstr(":7:21: error: 'allow' must be a list of host names such as")));
  EXPECT_THAT(errors_of("    egress: {allow: [{host: a.example.org}]}\n"),
              ElementsAre(HasSubstr(":7:22: error: 'allow[0]' must be a non-empty string, not a mapping")));
}

// Each bad pattern is reported at itself, with the reason make_grant gives.
TEST_F(EgressConfigTest, EachBadHostPatternIsRefusedAtItself) {
  EXPECT_THAT(errors_of("    egress: {allow: [good.example.org, 192.0.2.1]}\n"),
              ElementsAre(dir.at(7, 40, "'allow[1]': host pattern \"192.0.2.1\" is an IP address; grant host names "
                                        "only")));
  EXPECT_THAT(errors_of("    egress: {allow: [\"*.org\"]}\n"),
              ElementsAre(HasSubstr(":7:22: error: 'allow[0]': host pattern \"*.org\" after \"*.\" names a "
                                    "top-level domain only")));
  EXPECT_THAT(errors_of("    egress: {allow: [\"files.example.org:8080\"]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"files.example.org:8080\" has a port or a scheme")));
  EXPECT_THAT(errors_of("    egress: {allow: [\"https://files.example.org\"]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"https://files.example.org\" has a port or a scheme")));
  EXPECT_THAT(errors_of("    egress: {allow: [\"files.*.org\"]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"files.*.org\" has '*' other than as the whole "
                                    "first label")));
  EXPECT_THAT(errors_of("    egress: {allow: [localhost]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"localhost\" names a top-level domain only")));
  EXPECT_THAT(errors_of("    egress: {allow: [bad_name.example.org]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"bad_name.example.org\" has an invalid label")));
  EXPECT_THAT(errors_of("    egress: {allow: [\"::1\"]}\n"),
              ElementsAre(HasSubstr("'allow[0]': host pattern \"::1\" is an IP address")));
  // Two bad ones: two errors, each at its own value.
  EXPECT_THAT(errors_of("    egress: {allow: [198.51.100.7, a.example.org, \"*.org\"]}\n"),
              ElementsAre(HasSubstr(":7:22: error: 'allow[0]'"), HasSubstr(":7:51: error: 'allow[2]'")));
}

TEST_F(EgressConfigTest, PortsAndLimitsAreCheckedAtTheValue) {
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], ports: 443}\n"),
              ElementsAre(dir.at(7, 45, "'ports' must be a list of port numbers such as [80, 443], not '443'")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], ports: []}\n"),
              ElementsAre(HasSubstr(":7:45: error: 'ports' must be a list of port numbers")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], ports: [443, 0]}\n"),
              ElementsAre(dir.at(7, 51, "'ports[1]' must be from 1 to 65535, not 0")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], ports: [65536]}\n"),
              ElementsAre(HasSubstr("'ports[0]' must be from 1 to 65535, not 65536")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], ports: [https]}\n"),
              ElementsAre(HasSubstr("'ports[0]' must be a whole number, not 'https'")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], max_mib: 0}\n"),
              ElementsAre(dir.at(7, 47, "'max_mib' must be from 1 to 1073741824, not 0")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], max_mib: lots}\n"),
              ElementsAre(HasSubstr("'max_mib' must be a whole number, not 'lots'")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], max_connections: 0}\n"),
              ElementsAre(HasSubstr("'max_connections' must be from 1 to 4096, not 0")));
  EXPECT_THAT(errors_of("    egress: {allow: [a.example.org], max_connections: 5000}\n"),
              ElementsAre(HasSubstr("'max_connections' must be from 1 to 4096, not 5000")));
  // A bad grant gives no grant: the whole configuration is refused.
  EXPECT_FALSE(load("    egress: {allow: [a.example.org], ports: [0]}\n").ok());
}

TEST_F(EgressConfigTest, HostsFileIsReadRelativeToTheConfig) {
  dir.write("egress/hosts", "198.51.100.2 files.example.org\n", 0644);
  auto loaded = dir.load("egress_hosts_file: egress/hosts\n" + std::string(kMinimal));
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->egress_hosts_file, dir.path() / "egress/hosts");
}

TEST_F(EgressConfigTest, HostsFileMustBeAReadableFile) {
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_hosts_file: missing/hosts\n" + std::string(kMinimal))),
              ElementsAre(dir.at(1, 20, "cannot read " + (dir.path() / "missing/hosts").string() +
                                            ": No such file or directory")));
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_hosts_file: credentials\n" + std::string(kMinimal))),
              ElementsAre(dir.at(1, 20, (dir.path() / "credentials").string() + " is not a regular file")));
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_hosts_file: \"\"\n" + std::string(kMinimal))),
              ElementsAre(HasSubstr(":1:20: error: 'egress_hosts_file' must be a non-empty string, not ''")));
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_hosts_file: [a, b]\n" + std::string(kMinimal))),
              ElementsAre(HasSubstr(":1:20: error: 'egress_hosts_file' must be a non-empty string, not a list")));
  EXPECT_THAT(ConfigDir::errors(dir.load("egres_hosts_file: hosts\n" + std::string(kMinimal))),
              ElementsAre(HasSubstr(":1:1: error: unknown key 'egres_hosts_file' in the configuration (did you "
                                    "mean 'egress_hosts_file'?)")));
}

// egress_netns must name a network namespace that exists when the agent starts.
TEST_F(EgressConfigTest, NetnsMustBeANetworkNamespace) {
  auto loaded = dir.load("egress_netns: /proc/self/ns/net\n" + std::string(kMinimal));
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->egress_netns, "/proc/self/ns/net");

  EXPECT_THAT(ConfigDir::errors(dir.load("egress_netns: /proc/self/ns/mnt\n" + std::string(kMinimal))),
              ElementsAre(dir.at(1, 15, "'egress_netns': /proc/self/ns/mnt is not a network namespace (make one "
                                        "with `ip netns add NAME`: /run/netns/NAME)")));
  dir.write("not-a-namespace", "", 0644);
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_netns: not-a-namespace\n" + std::string(kMinimal))),
              ElementsAre(HasSubstr(":1:15: error: 'egress_netns': " + (dir.path() / "not-a-namespace").string() +
                                    " is not a network namespace")));
  EXPECT_THAT(ConfigDir::errors(dir.load("egress_netns: /run/netns/sandci-no-such-namespace\n" + std::string(kMinimal))),
              ElementsAre(dir.at(1, 15, "cannot open /run/netns/sandci-no-such-namespace: No such file or directory "
                                        "('egress_netns' names a network namespace such as /run/netns/egress)")));
}

}  // namespace
}  // namespace sandci::agent::config
