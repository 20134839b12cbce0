#include "sandbox/oci_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sandbox/runsc_backend.h"

namespace sandci::sandbox {
namespace {

using ::testing::Contains;
using ::testing::Not;

SandboxSpec job_spec() {
  SandboxSpec spec;
  spec.rootfs = "/images/debian";
  spec.mounts.push_back(Mount{"/srv/checkout", "/workspace", false});
  spec.mounts.push_back(Mount{"/srv/cache", "/cache", true});
  spec.limits.memory_bytes = 1ull << 30;
  spec.limits.cpus = 1.5;
  spec.limits.pids = 512;
  return spec;
}

nlohmann::json mount_at(const nlohmann::json& config, const std::string& dest) {
  for (const auto& m : config["mounts"]) {
    if (m["destination"] == dest) return m;
  }
  return nullptr;
}

TEST(OciSpecTest, ConfigSetsLimitsCgroupAndNamespaces) {
  auto config = make_config(job_spec(), "/sandci-job1");
  EXPECT_EQ(config["linux"]["cgroupsPath"], "/sandci-job1");
  EXPECT_EQ(config["linux"]["resources"]["memory"]["limit"], 1ull << 30);
  EXPECT_EQ(config["linux"]["resources"]["pids"]["limit"], 512);
  EXPECT_EQ(config["linux"]["resources"]["cpu"]["quota"], 150000);
  EXPECT_EQ(config["linux"]["resources"]["cpu"]["period"], 100000);
  std::vector<std::string> namespaces;
  for (const auto& ns : config["linux"]["namespaces"]) namespaces.push_back(ns["type"]);
  EXPECT_THAT(namespaces, Contains("network"));
  EXPECT_THAT(namespaces, Contains("pid"));
  EXPECT_EQ(config["root"]["path"], "/images/debian");
}

TEST(OciSpecTest, ConfigMountsWorkspaceAndAPrivateTmp) {
  auto config = make_config(job_spec(), "/x");
  auto workspace = mount_at(config, "/workspace");
  ASSERT_FALSE(workspace.is_null());
  EXPECT_EQ(workspace["type"], "bind");
  EXPECT_EQ(workspace["source"], "/srv/checkout");
  EXPECT_THAT(workspace["options"], Contains("rw"));
  EXPECT_THAT(mount_at(config, "/cache")["options"], Contains("ro"));
  auto tmp = mount_at(config, "/tmp");
  ASSERT_FALSE(tmp.is_null());
  EXPECT_EQ(tmp["type"], "tmpfs");
}

TEST(OciSpecTest, ExtraTmpfsFoldersComeBeforeTheBindMounts) {
  SandboxSpec spec;
  spec.rootfs = "/images/debian/rootfs";
  spec.tmpfs = {"/tmp/sandci"};
  spec.mounts.push_back({"/host/event.json", "/tmp/sandci/event.json", true});
  auto config = make_config(spec, "/sandci-x");
  std::size_t tmpfs_at = 0, bind_at = 0;
  for (std::size_t i = 0; i < config["mounts"].size(); ++i) {
    if (config["mounts"][i]["destination"] == "/tmp/sandci") tmpfs_at = i;
    if (config["mounts"][i]["destination"] == "/tmp/sandci/event.json") bind_at = i;
  }
  ASSERT_GT(tmpfs_at, 0u);
  EXPECT_LT(tmpfs_at, bind_at);
  const auto& tmpfs = config["mounts"][tmpfs_at];
  EXPECT_EQ(tmpfs["type"], "tmpfs");
  EXPECT_NE(std::find(tmpfs["options"].begin(), tmpfs["options"].end(), "mode=1777"), tmpfs["options"].end());
  const auto& bind = config["mounts"][bind_at];
  EXPECT_NE(std::find(bind["options"].begin(), bind["options"].end(), "ro"), bind["options"].end());
}

TEST(OciSpecTest, ProcessHasNoDangerousCapabilitiesAndNoNewPrivileges) {
  ExecRequest request{{"make", "test"}, {}, "", {}};
  auto process = make_process(job_spec(), request);
  EXPECT_EQ(process["noNewPrivileges"], true);
  EXPECT_EQ(process["cwd"], "/workspace");
  for (const char* cap : {"CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_MKNOD",
                          "CAP_NET_ADMIN", "CAP_SYS_CHROOT"}) {
    EXPECT_THAT(process["capabilities"]["bounding"], Not(Contains(cap))) << cap;
  }
  EXPECT_THAT(process["capabilities"]["bounding"], Contains("CAP_CHOWN"));
  bool nofile = false;
  for (const auto& r : process["rlimits"]) nofile = nofile || r["type"] == "RLIMIT_NOFILE";
  EXPECT_TRUE(nofile);
}

TEST(OciSpecTest, NonRootJobsGetNoCapabilities) {
  auto spec = job_spec();
  spec.uid = spec.gid = 1000;
  auto process = make_process(spec, ExecRequest{{"id"}, {}, "/tmp", {}});
  EXPECT_TRUE(process["capabilities"]["effective"].empty());
  EXPECT_EQ(process["user"]["uid"], 1000);
  EXPECT_EQ(process["cwd"], "/tmp");
}

TEST(OciSpecTest, StepEnvironmentOverridesTheSandboxOne) {
  auto env = merge_env({"A=1", "B=2"}, {"B=3", "C=4"});
  EXPECT_THAT(env, Contains("A=1"));
  EXPECT_THAT(env, Contains("B=3"));
  EXPECT_THAT(env, Not(Contains("B=2")));
  EXPECT_THAT(env, Contains("C=4"));
  EXPECT_EQ(std::count_if(env.begin(), env.end(), [](const auto& e) { return e.starts_with("PATH="); }), 1);
  EXPECT_THAT(merge_env({"PATH=/mine"}, {}), Contains("PATH=/mine"));
}

TEST(RunscIdTest, HintsAreSanitized) {
  EXPECT_EQ(sanitize_id_part("Build (ubuntu)/x"), "build--ubuntu--x");
  EXPECT_EQ(sanitize_id_part(std::string(100, 'a')).size(), 24u);
}

}  // namespace
}  // namespace sandci::sandbox
