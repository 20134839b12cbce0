// Reloading the agent's configuration while it runs: which keys a SIGHUP takes,
// which need a restart, and snapshots that outlive a replacement.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config/live_config.h"

namespace sandci::agent::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

AgentConfig base() {
  AgentConfig config;
  config.listen = ListenAddress{"127.0.0.1", 8080};
  config.public_url = "https://ci.example.org";
  config.state_dir = "/var/lib/sandci";
  config.capacity = 2;
  RepositoryConfig repo;
  repo.name = "alice/hello";
  repo.webhook_secret = Secret("hook-one");
  repo.api_token = Secret("token-one");
  config.repositories.push_back(repo);
  return config;
}

TEST(PlanReloadTest, TakesRepositoriesSecretsLabelsAndLimitsLive) {
  AgentConfig next = base();
  next.repositories[0].webhook_secret = Secret("hook-two");
  RepositoryConfig added;
  added.name = "bob/tools";
  added.forge = Forge::kGitea;
  next.repositories.push_back(added);
  next.labels["gpu"] = "debian-cuda:12";
  next.limits.job_memory_mib = 1024;
  next.admin_token = Secret("admin-two");
  next.log_level = LogLevel::kDebug;

  auto plan = plan_reload(base(), next);
  EXPECT_THAT(plan.needs_restart, IsEmpty());
  ASSERT_EQ(plan.config.repositories.size(), 2u);
  EXPECT_EQ(plan.config.repositories[0].webhook_secret.reveal(), "hook-two");
  EXPECT_NE(plan.config.find_repository(Forge::kGitea, "bob/tools"), nullptr);
  EXPECT_EQ(plan.config.labels.at("gpu"), "debian-cuda:12");
  EXPECT_EQ(plan.config.limits.job_memory_mib, 1024u);
  EXPECT_EQ(plan.config.admin_token->reveal(), "admin-two");
  EXPECT_EQ(plan.config.log_level, LogLevel::kDebug);
}

TEST(PlanReloadTest, KeepsTheListenerFoldersAndCapacityUntilARestart) {
  AgentConfig next = base();
  next.listen.port = 9090;
  next.state_dir = "/srv/sandci";
  next.capacity = 8;
  next.tls = TlsFiles{"/etc/sandci/cert.pem", "/etc/sandci/key.pem"};
  next.limits.webhook_body_mib = 5;
  next.actions.source = "https://gitea.example.org";
  next.sandbox.backend = SandboxBackendKind::kDocker;
  next.retention.max_age_days = 7;
  next.repositories.clear();  // taken: removing a repository is live

  auto plan = plan_reload(base(), next);
  EXPECT_THAT(plan.needs_restart, ElementsAre("listen", "tls", "state_dir", "capacity", "limits.webhook_body_mib",
                                              "actions", "sandbox", "retention"));
  EXPECT_EQ(plan.config.sandbox.backend, SandboxBackendKind::kRunsc);
  EXPECT_EQ(plan.config.retention.max_age_days, 30u);
  EXPECT_EQ(plan.config.listen.port, 8080);
  EXPECT_EQ(plan.config.state_dir, "/var/lib/sandci");
  EXPECT_EQ(plan.config.capacity, 2u);
  EXPECT_FALSE(plan.config.tls.has_value());
  EXPECT_EQ(plan.config.limits.webhook_body_mib, 25u);
  EXPECT_EQ(plan.config.actions.source, "https://github.com");
  EXPECT_THAT(plan.config.repositories, IsEmpty());
}

TEST(PlanReloadTest, WarmSandboxesAreTakenLiveEvenWhenTheBackendWaitsForARestart) {
  AgentConfig next = base();
  next.sandbox.warm = 5;
  auto plan = plan_reload(base(), next);
  EXPECT_THAT(plan.needs_restart, IsEmpty());
  EXPECT_EQ(plan.config.sandbox.warm, 5u);

  next.sandbox.backend = SandboxBackendKind::kDocker;
  next.sandbox.warm = 0;
  plan = plan_reload(base(), next);
  EXPECT_THAT(plan.needs_restart, ElementsAre("sandbox"));
  EXPECT_EQ(plan.config.sandbox.backend, SandboxBackendKind::kRunsc);
  EXPECT_EQ(plan.config.sandbox.warm, 0u) << "runs read it as they start: no restart needed";
}

TEST(PlanReloadTest, AChangedActionsTokenNeedsARestart) {
  AgentConfig running = base();
  running.actions.clone.https = git::HttpsToken{"x-access-token", "mirror-one"};
  AgentConfig next = base();
  next.actions.clone.https = git::HttpsToken{"x-access-token", "mirror-two"};
  auto plan = plan_reload(running, next);
  EXPECT_THAT(plan.needs_restart, ElementsAre("actions"));
  EXPECT_EQ(plan.config.actions.clone.https->token, "mirror-one");
}

TEST(PlanReloadTest, AChangedActionsRetentionNeedsARestart) {
  AgentConfig next = base();
  next.retention.actions_days = 3;
  auto plan = plan_reload(base(), next);
  EXPECT_THAT(plan.needs_restart, ElementsAre("retention"));
  EXPECT_EQ(plan.config.retention.actions_days, 30u);
}

TEST(LiveConfigTest, ASnapshotOutlivesAReplacement) {
  LiveConfig live(base());
  ConfigRef ref(live);
  auto before = ref.get();
  AgentConfig next = base();
  next.repositories[0].api_token = Secret("token-two");
  live.replace(next);
  EXPECT_EQ(before->repositories[0].api_token.reveal(), "token-one");
  EXPECT_EQ(ref.get()->repositories[0].api_token.reveal(), "token-two");
}

TEST(LiveConfigTest, AFixedConfigurationIsSeenAsIs) {
  AgentConfig fixed = base();
  ConfigRef ref(fixed);
  EXPECT_EQ(ref.get().get(), &fixed);
}

}  // namespace
}  // namespace sandci::agent::config
