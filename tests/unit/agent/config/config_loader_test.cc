#include "agent/config/config_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config_test_support.h"

namespace sandci::agent::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // config_test_support.h: ConfigDir, kMinimal, MinimalConfigTest

class ConfigLoaderTest : public MinimalConfigTest {
 protected:
};

std::string read_text(const std::filesystem::path& file) {
  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  return text.str();
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

TEST_F(ConfigLoaderTest, TheDocumentedExampleLoads) {
  std::string example = read_text(std::filesystem::path(SANDCI_SOURCE_DIR) / "docs/agent.example.yml");
  ASSERT_THAT(example, HasSubstr("/etc/sandci/"));
  example = replace_all(example, "/etc/sandci/", dir.path().string() + "/");
  dir.write("hello.webhook", "hello-hook\n");
  dir.write("hello.deploy-key", "deploy-key-value\n");
  dir.write("website.ssh-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n");
  dir.write("known_hosts", "git.example.org ssh-ed25519 AAAA\n", 0644);
  for (const char* name : {"admin-token", "hello-token", "builder-webhook", "builder-token",
                           "website-webhook", "website-token"})
    dir.credential(name, std::string(name) + "-value");

  const auto loaded = dir.load(example);
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const AgentConfig& config = *loaded.config;
  EXPECT_EQ(config.listen.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(config.public_url, "https://ci.example.org");
  EXPECT_EQ(config.run_url("17"), "https://ci.example.org/runs/17");
  EXPECT_EQ(config.capacity, 4u);
  EXPECT_EQ(config.labels.at("ubuntu-latest"), "debian:12");
  ASSERT_TRUE(config.admin_token.has_value());
  EXPECT_EQ(config.admin_token->reveal(), "admin-token-value");
  ASSERT_EQ(config.repositories.size(), 3u);

  const RepositoryConfig* hello = config.find_repository(Forge::kGithub, "alice/hello");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->api_url, "https://api.github.com");
  EXPECT_EQ(hello->webhook_secret.reveal(), "hello-hook");
  EXPECT_EQ(hello->api_token.reveal(), "hello-token-value");
  EXPECT_TRUE(hello->handles(RepositoryEvent::kTag));
  EXPECT_TRUE(hello->cancel_superseded);
  ASSERT_EQ(hello->secrets.size(), 1u);
  EXPECT_EQ(hello->secrets[0].name, "DEPLOY_KEY");
  EXPECT_EQ(hello->secrets[0].value.reveal(), "deploy-key-value");

  const RepositoryConfig* builder = config.find_repository(Forge::kGitlab, "platform/tools/builder");
  ASSERT_NE(builder, nullptr);
  EXPECT_EQ(builder->project_id, 42);
  EXPECT_EQ(builder->api_url, "https://gitlab.example.org/api/v4");
  ASSERT_TRUE(builder->clone.https.has_value());
  EXPECT_EQ(builder->clone.https->username, "oauth2");
  EXPECT_EQ(builder->clone.https->token, "builder-token-value");

  const RepositoryConfig* website = config.find_repository(Forge::kForgejo, "bob/website");
  ASSERT_NE(website, nullptr);
  EXPECT_EQ(website->clone_url, "git@git.example.org:bob/website.git");
  ASSERT_TRUE(website->clone.ssh.has_value());
  EXPECT_EQ(website->clone.ssh->private_key, dir.path() / "website.ssh-key");
  EXPECT_EQ(website->clone.known_hosts, dir.path() / "known_hosts");

  const auto secrets = config.secret_values();
  for (const char* value : {"admin-token-value", "hello-hook", "hello-token-value", "deploy-key-value",
                            "builder-webhook-value", "builder-token-value", "website-webhook-value",
                            "website-token-value"})
    EXPECT_THAT(secrets, ::testing::Contains(value));
}

TEST_F(ConfigLoaderTest, DefaultsForEverythingLeftOut) {
  Environment env = dir.env();
  env.cores = 6;
  const auto loaded = dir.load(kMinimal, env);
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const AgentConfig& config = *loaded.config;
  EXPECT_EQ(config.listen.host, "127.0.0.1");
  EXPECT_EQ(config.listen.port, 8080);
  EXPECT_FALSE(config.tls.has_value());
  EXPECT_EQ(config.state_dir, "/var/lib/sandci");
  EXPECT_EQ(config.capacity, 6u);
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_EQ(config.default_image, "debian:12");
  EXPECT_TRUE(config.labels.empty());
  EXPECT_EQ(config.limits.job_memory_mib, 4096u);
  EXPECT_EQ(config.limits.job_log_mib, 64u);
  EXPECT_EQ(config.limits.webhook_body_mib, 25u);
  EXPECT_EQ(config.shutdown_grace_seconds, 60u);
  EXPECT_EQ(config.interrupted_runs, InterruptedRuns::kRequeue);
  EXPECT_TRUE(config.status.ca_file.empty());
  EXPECT_FALSE(config.admin_token.has_value());
  EXPECT_EQ(config.login_hours, 168u);  // a week
  const RepositoryConfig& repo = config.repositories.at(0);
  EXPECT_EQ(repo.api_url, "https://api.github.com");
  EXPECT_FALSE(repo.project_id.has_value());
  EXPECT_EQ(repo.events,
            (std::vector{RepositoryEvent::kPush, RepositoryEvent::kPullRequest, RepositoryEvent::kSchedule}));
  EXPECT_FALSE(repo.handles(RepositoryEvent::kTag));
  EXPECT_EQ(repo.default_branch, "main");
  EXPECT_TRUE(repo.cancel_superseded);  // a new push to a branch cancels its older run by default
  EXPECT_TRUE(repo.clone_url.empty());
  EXPECT_FALSE(repo.clone.https.has_value());
  EXPECT_FALSE(repo.clone.ssh.has_value());
  EXPECT_TRUE(repo.secrets.empty());
  EXPECT_EQ(repo.webhook_secret.reveal(), "webhook-secret-value");  // trailing newline gone
}

TEST_F(ConfigLoaderTest, StateDirectoryComesFromSystemd) {
  Environment env = dir.env();
  env.state_directory = "/var/lib/sandci-a:/var/lib/other";
  const auto loaded = dir.load(kMinimal, env);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config->state_dir, "/var/lib/sandci-a");
}

TEST_F(ConfigLoaderTest, PublicUrlLosesItsTrailingSlash) {
  const auto loaded = dir.load(replace_all(kMinimal, "https://ci.example.org", "https://example.org/ci/"));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config->run_url("5"), "https://example.org/ci/runs/5");
}

TEST_F(ConfigLoaderTest, UnknownKeysAreReportedWithDidYouMean) {
  const auto loaded = dir.load(std::string("capacty: 2\n") + kMinimal + "    cancel_superceded: true\n");
  EXPECT_FALSE(loaded.config.has_value());
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(1, 1, "unknown key 'capacty' in the configuration (did you mean 'capacity'?)"),
                          dir.at(8, 5, "unknown key 'cancel_superceded' in repository 'alice/hello' "
                                       "(did you mean 'cancel_superseded'?)")));
}

TEST_F(ConfigLoaderTest, WrongTypesAreReportedAtTheValue) {
  const auto loaded = dir.load(std::string(kMinimal) + "capacity: many\nlabels: [a, b]\n" +
                               "shutdown_grace_seconds: -1\nlog_level: verbose\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 11, "'capacity' must be a whole number, not 'many'"),
                          dir.at(8, 9, "'labels' must be a mapping, not a list"),
                          dir.at(9, 25, "'shutdown_grace_seconds' must be from 0 to 86400, not -1"),
                          dir.at(10, 12, "unknown log_level 'verbose' (one of: trace, debug, info, warn, error)")));
}

TEST_F(ConfigLoaderTest, LoginHoursAreAWholeNumberUpToAYear) {
  const auto day = dir.load(std::string(kMinimal) + "login_hours: 24\n");
  ASSERT_TRUE(day.ok()) << ::testing::PrintToString(ConfigDir::errors(day));
  EXPECT_EQ(day.config->login_hours, 24u);
  const auto bad = dir.load(std::string(kMinimal) + "login_hours: 0\n");
  EXPECT_THAT(ConfigDir::errors(bad), ElementsAre(dir.at(7, 14, "'login_hours' must be from 1 to 8784, not 0")));
}

TEST_F(ConfigLoaderTest, InlineSecretsAreRefusedWithoutQuotingThem) {
  const auto loaded = dir.load(replace_all(kMinimal, "{credential: token}", "ghp_s3cr3tvalue"));
  ASSERT_EQ(loaded.diagnostics.size(), 1u);
  EXPECT_EQ(loaded.diagnostics[0].to_string(),
            dir.at(6, 16, "'api_token': secrets are never written in the config: use "
                          "{file: PATH} or {credential: NAME}"));
  EXPECT_THAT(loaded.diagnostics[0].to_string(), Not(HasSubstr("ghp_s3cr3tvalue")));
}

TEST_F(ConfigLoaderTest, GroupReadableSecretFileIsRefused) {
  const auto file = dir.write("hook.secret", "s3cr3t-hook\n", 0644);
  const auto loaded = dir.load(replace_all(kMinimal, "{credential: hook}", "\n      file: hook.secret"));
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(6, 13, file.string() + " is readable by group or others (mode 0644): chmod 600 " +
                                            file.string())));
  EXPECT_THAT(ConfigDir::errors(loaded)[0], Not(HasSubstr("s3cr3t-hook")));
}

TEST_F(ConfigLoaderTest, SecretFilesAreReadRelativeToTheConfigAndMustNotBeEmpty) {
  dir.write("hook.secret", "line1\nline2\r\n");
  dir.write("empty.secret", "\n");
  auto loaded = dir.load(replace_all(kMinimal, "{credential: hook}", "{file: hook.secret}"));
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->repositories[0].webhook_secret.reveal(), "line1\nline2");

  loaded = dir.load(replace_all(kMinimal, "{credential: hook}", "{file: empty.secret}"));
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(5, 28, (dir.path() / "empty.secret").string() +
                                            " is empty: a secret needs a value")));
}

TEST_F(ConfigLoaderTest, MissingSecretFileIsNamed) {
  const auto loaded = dir.load(replace_all(kMinimal, "{credential: hook}", "{file: /nonexistent/hook}"));
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(5, 28, "cannot read /nonexistent/hook: No such file or directory")));
}

TEST_F(ConfigLoaderTest, MissingCredentialNamesTheVariableAndTheFile) {
  auto loaded = dir.load(replace_all(kMinimal, "{credential: token}", "{credential: nope}"));
  const std::string file = (dir.credentials() / "nope").string();
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(6, 29, "cannot read credential 'nope' ($CREDENTIALS_DIRECTORY/nope = " +
                                            file + "): No such file or directory")));

  Environment no_credentials = dir.env();
  no_credentials.credentials_directory.clear();
  loaded = dir.load(kMinimal, no_credentials);
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(5, 34, "credential 'hook' needs $CREDENTIALS_DIRECTORY, which is not set "
                                        "(systemd sets it for LoadCredential=hook:FILE)"),
                          dir.at(6, 29, "credential 'token' needs $CREDENTIALS_DIRECTORY, which is not set "
                                        "(systemd sets it for LoadCredential=token:FILE)")));
}

TEST_F(ConfigLoaderTest, GitlabNeedsProjectIdAndOnlyGitlabTakesOne) {
  auto loaded = dir.load(replace_all(kMinimal, "forge: github", "forge: gitlab"));
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(3, 5, "repository 'alice/hello' needs 'project_id' on gitlab "
                                       "(the number on the project's page)")));

  loaded = dir.load(std::string(kMinimal) + "    project_id: 7\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 5, "'project_id' is only for gitlab repositories")));

  loaded = dir.load(replace_all(kMinimal, "forge: github", "forge: gitlab") + "    project_id: 7\n");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.config->repositories[0].project_id, 7);
  EXPECT_EQ(loaded.config->repositories[0].api_url, "https://gitlab.com/api/v4");
}

TEST_F(ConfigLoaderTest, GiteaNeedsApiUrl) {
  const auto loaded = dir.load(replace_all(kMinimal, "forge: github", "forge: gitea"));
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(3, 5, "repository 'alice/hello' needs 'api_url' on gitea (the API root, "
                                       "such as https://git.example.org/api/v1)")));
}

TEST_F(ConfigLoaderTest, DuplicateRepositoryIsReportedAtTheSecond) {
  const std::string second =
      "  - name: Alice/Hello\n"
      "    forge: github\n"
      "    webhook_secret: {credential: hook}\n"
      "    api_token: {credential: token}\n"
      "  - name: alice/hello\n"
      "    forge: gitea\n"
      "    api_url: https://git.example.org/api/v1\n"
      "    webhook_secret: {credential: hook}\n"
      "    api_token: {credential: token}\n";
  const auto loaded = dir.load(kMinimal + second);
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 11, "repository 'Alice/Hello' on github is listed twice (first at line 3)")));
}

TEST_F(ConfigLoaderTest, BadListenAddress) {
  const auto loaded = dir.load(std::string("listen: localhost:8080\n") + kMinimal);
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(1, 9, "'listen': 'localhost' is not an IP address: use ADDRESS:PORT, "
                                       "e.g. 127.0.0.1:8080 or [::1]:8080")));
}

TEST_F(ConfigLoaderTest, BadEventsWithDidYouMean) {
  const auto loaded = dir.load(std::string(kMinimal) + "    events: [push, pul_request, push]\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 20, "unknown event 'pul_request' (did you mean 'pull_request'?) "
                                        "(one of: push, pull_request, tag, schedule)"),
                          dir.at(7, 33, "event 'push' is listed twice")));
}

TEST_F(ConfigLoaderTest, DefaultBranchForSchedules) {
  const auto loaded = dir.load(std::string(kMinimal) + "    default_branch: refs/heads/trunk\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->repositories.at(0).default_branch, "trunk");
  const auto bad = dir.load(std::string(kMinimal) + "    default_branch: 'a..b'\n");
  EXPECT_THAT(ConfigDir::errors(bad),
              ElementsAre(dir.at(7, 21, "'default_branch' must be a branch name such as main, not 'a..b'")));
}

TEST_F(ConfigLoaderTest, BadUrlsAndMissingRequiredKeys) {
  const auto loaded = dir.load(
      "public_url: ftp://ci.example.org\n"
      "repositories:\n"
      "  - name: hello\n"
      "    forge: gihub\n"
      "    api_url: https://user:pw@api.example.org\n");
  EXPECT_THAT(
      ConfigDir::errors(loaded),
      ElementsAre(dir.at(1, 13, "'public_url' must be an http(s) URL such as https://ci.example.org, "
                                "not 'ftp://ci.example.org'"),
                  dir.at(3, 5, "repository #1 needs 'webhook_secret'"),
                  dir.at(3, 5, "repository #1 needs 'api_token'"),
                  dir.at(3, 11, "'name' must be the repository's full name such as alice/hello, not 'hello'"),
                  dir.at(4, 12, "unknown forge 'gihub' (did you mean 'github'?) "
                                "(one of: github, gitea, forgejo, gitlab)"),
                  dir.at(5, 14, "'api_url' must not hold credentials")));
}

TEST_F(ConfigLoaderTest, CloneCredentials) {
  dir.write("known_hosts", "h ssh-ed25519 AAAA\n", 0644);
  dir.write("deploy.key", "key\n");
  auto loaded = dir.load(std::string(kMinimal) +
                         "    clone_url: https://git.example.org/alice/hello.git\n"
                         "    clone:\n"
                         "      https_token: {credential: token}\n"
                         "      ssh_key: {file: deploy.key}\n"
                         "      known_hosts: known_hosts\n");
  ASSERT_TRUE(loaded.ok()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  const auto& clone = loaded.config->repositories[0].clone;
  ASSERT_TRUE(clone.https.has_value());
  EXPECT_EQ(clone.https->username, "x-access-token");
  EXPECT_EQ(clone.https->token, "api-token-value");
  ASSERT_TRUE(clone.ssh.has_value());
  EXPECT_EQ(clone.ssh->private_key, dir.path() / "deploy.key");
  EXPECT_EQ(clone.known_hosts, dir.path() / "known_hosts");

  loaded = dir.load(std::string(kMinimal) +
                    "    clone_url: https://x-access-token:abc@git.example.org/alice/hello.git\n"
                    "    clone:\n"
                    "      ssh_key: {file: deploy.key}\n"
                    "      https_username: bot\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 16, "'clone_url' must not hold credentials: use clone.https_token"),
                          dir.at(9, 7, "'ssh_key' needs 'known_hosts': without it every SSH host is refused"),
                          dir.at(10, 7, "'https_username' needs 'https_token'")));
}

TEST_F(ConfigLoaderTest, JobSecretNamesMustBeIdentifiers) {
  const auto loaded = dir.load(std::string(kMinimal) +
                               "    secrets:\n"
                               "      GOOD_NAME: {credential: token}\n"
                               "      2BAD: {credential: token}\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(9, 7, "invalid secret name '2BAD': use letters, digits and '_', "
                                       "not starting with a digit")));
}

TEST_F(ConfigLoaderTest, TlsAndCaFilesMustExist) {
  dir.write("cert.pem", "cert", 0644);
  const auto loaded = dir.load(std::string(kMinimal) +
                               "tls: {cert: cert.pem, key: missing.pem}\n"
                               "status: {ca_file: /nonexistent/ca.pem}\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(7, 28, "cannot read " + (dir.path() / "missing.pem").string() +
                                            ": No such file or directory"),
                          dir.at(8, 19, "cannot read /nonexistent/ca.pem: No such file or directory")));
}

TEST_F(ConfigLoaderTest, EveryErrorIsReportedAtOnceInFileOrder) {
  const auto loaded = dir.load(
      "listen: nowhere\n"
      "repositories:\n"
      "  - name: alice/hello\n"
      "    forge: github\n"
      "    webhook_secret: plain\n"
      "    api_token: {credential: token}\n"
      "    events: [pushh]\n"
      "capacity: 0\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(1, 1, "'public_url' is required: commit statuses link to <public_url>/runs/<id>"),
                          dir.at(1, 9, "'listen': 'nowhere' has no port: use ADDRESS:PORT, "
                                       "e.g. 127.0.0.1:8080 or [::1]:8080"),
                          dir.at(5, 21, "'webhook_secret': secrets are never written in the config: use "
                                        "{file: PATH} or {credential: NAME}"),
                          dir.at(7, 14, "unknown event 'pushh' (did you mean 'push'?) "
                                        "(one of: push, pull_request, tag, schedule)"),
                          dir.at(8, 11, "'capacity' must be from 1 to 4096, not 0")));
}

TEST_F(ConfigLoaderTest, EmptyMissingAndMalformedFiles) {
  auto loaded = dir.load("# nothing\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(1, 1, "the file is empty: the agent needs at least 'public_url' and "
                                       "'repositories'")));
  loaded = dir.load("public_url: [unclosed\n");
  ASSERT_EQ(loaded.diagnostics.size(), 1u);
  EXPECT_THAT(loaded.diagnostics[0].message, HasSubstr("invalid YAML"));
  loaded = load_agent_config(dir.path() / "absent.yml", dir.env());
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre((dir.path() / "absent.yml").string() + ": error: no such file"));
}

TEST_F(ConfigLoaderTest, SandboxBackendDockerWithItsSocket) {
  auto loaded = dir.load(std::string(kMinimal) +
                         "sandbox: {backend: docker, docker_socket: /run/docker.sock, docker_pull: true}\n");
  ASSERT_TRUE(loaded.config.has_value()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->sandbox.backend, SandboxBackendKind::kDocker);
  EXPECT_EQ(loaded.config->sandbox.docker_socket, "/run/docker.sock");
  EXPECT_EQ(loaded.config->sandbox.docker_runtime, "runsc");
  EXPECT_TRUE(loaded.config->sandbox.docker_pull);
  loaded = dir.load(kMinimal);
  ASSERT_TRUE(loaded.config.has_value());
  EXPECT_EQ(loaded.config->sandbox.backend, SandboxBackendKind::kRunsc);
}

TEST_F(ConfigLoaderTest, WarmSandboxesHaveADefaultAndABound) {
  auto loaded = dir.load(kMinimal);
  ASSERT_TRUE(loaded.config.has_value());
  EXPECT_EQ(loaded.config->sandbox.warm, kDefaultWarmSandboxes);
  loaded = dir.load(std::string(kMinimal) + "sandbox: {warm: 0}\n");
  ASSERT_TRUE(loaded.config.has_value()) << ::testing::PrintToString(ConfigDir::errors(loaded));
  EXPECT_EQ(loaded.config->sandbox.warm, 0u);
  loaded = dir.load(std::string(kMinimal) + "sandbox: {warm: 4}\n");
  ASSERT_TRUE(loaded.config.has_value());
  EXPECT_EQ(loaded.config->sandbox.warm, 4u);
  for (const char* bad : {"sandbox: {warm: -1}\n", "sandbox: {warm: 17}\n", "sandbox: {warm: many}\n"}) {
    loaded = dir.load(std::string(kMinimal) + bad);
    EXPECT_FALSE(loaded.config.has_value()) << bad;
    ASSERT_EQ(ConfigDir::errors(loaded).size(), 1u) << bad;
    EXPECT_THAT(ConfigDir::errors(loaded)[0], ::testing::HasSubstr("warm")) << bad;
  }
}

TEST_F(ConfigLoaderTest, SandboxRuntimeWithoutGvisorNeedsExplicitConsent) {
  auto loaded = dir.load(std::string(kMinimal) + "sandbox:\n  backend: dockr\n  docker_runtime: runc\n" +
                         "  docker_socket: run/docker.sock\n");
  EXPECT_THAT(ConfigDir::errors(loaded),
              ElementsAre(dir.at(8, 12, "unknown backend 'dockr' (did you mean 'docker'?) (one of: runsc, docker)"),
                          dir.at(9, 19, "'docker_runtime: runc' drops gVisor (jobs would share the host kernel); "
                                        "set 'docker_allow_other_runtime: true' to mean it"),
                          dir.at(10, 18, "'docker_socket' must be an absolute path, not 'run/docker.sock'")));
  loaded = dir.load(std::string(kMinimal) + "sandbox: {backend: docker, docker_runtime: runc, "
                                            "docker_allow_other_runtime: true}\n");
  ASSERT_TRUE(loaded.config.has_value());
  EXPECT_EQ(loaded.config->sandbox.docker_runtime, "runc");
}

}  // namespace
}  // namespace sandci::agent::config
