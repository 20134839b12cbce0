// `sandci image ...` end to end: the real binary, a private --state-dir, real
// archives written by the test, skopeo copying from local oci: / docker-archive:
// sources (no registry), and one cached debootstrap for build-default.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "support/image_fixtures.h"

namespace {

using sandci::testing::TarBuilder;
using sandci::testing::TempDir;
namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string output;  // stdout and stderr
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Result run(const std::string& args, const std::string& env = "") {
  std::string command = env + " " + quote(SANDCI_BINARY) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A tiny but real root filesystem: busybox and a few applets.
TarBuilder busybox_rootfs() {
  TarBuilder t;
  t.dir(".").dir("bin").dir("etc").dir("tmp", 01777);
  t.host_file("bin/busybox", "/bin/busybox");
  for (const char* applet : {"sh", "ls", "cat", "echo", "env", "pwd"}) t.symlink(std::string("bin/") + applet, "busybox");
  t.file("etc/motd", "tiny image\n");
  return t;
}

class CliImageTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string state_ = (tmp_ / "state").string();
  std::string sd() const { return " --state-dir " + quote(state_); }
};

TEST_F(CliImageTest, ImportListInspectRemove) {
  busybox_rootfs().write(tmp_ / "tiny.tar.gz", /*gzip=*/true);
  auto imported = run("image import tiny:1 " + quote((tmp_ / "tiny.tar.gz").string()) + sd());
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_TRUE(contains(imported.output, "imported tiny:1")) << imported.output;

  auto list = run("image list" + sd());
  ASSERT_EQ(list.code, 0) << list.output;
  EXPECT_TRUE(contains(list.output, "NAME")) << list.output;
  EXPECT_TRUE(contains(list.output, "tiny:1")) << list.output;
  EXPECT_TRUE(contains(list.output, " MB")) << list.output;  // busybox is about 2 MB

  auto inspect = run("image inspect tiny:1" + sd());
  ASSERT_EQ(inspect.code, 0) << inspect.output;
  fs::path rootfs = fs::path(state_) / "images" / "tiny%3A1" / "rootfs";
  EXPECT_TRUE(contains(inspect.output, "rootfs: " + rootfs.string())) << inspect.output;
  // The folder is a usable root filesystem: run its shell in it.
  std::string out = sandci::testing::command_output("chroot " + quote(rootfs.string()) + " /bin/sh -c 'cat /etc/motd'");
  EXPECT_EQ(out, "tiny image\n");

  auto removed = run("image rm tiny:1" + sd());
  ASSERT_EQ(removed.code, 0) << removed.output;
  EXPECT_FALSE(fs::exists(rootfs));
  EXPECT_FALSE(contains(run("image list" + sd()).output, "tiny:1"));
  auto again = run("image rm tiny:1" + sd());
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_TRUE(contains(again.output, "image 'tiny:1' is not in the image store")) << again.output;
}

TEST_F(CliImageTest, StateDirComesFromTheEnvironment) {
  busybox_rootfs().write(tmp_ / "tiny.tar");
  auto imported = run("image import envimg " + quote((tmp_ / "tiny.tar").string()), "SANDCI_STATE_DIR=" + quote(state_));
  ASSERT_EQ(imported.code, 0) << imported.output;
  EXPECT_TRUE(fs::exists(fs::path(state_) / "images" / "envimg%3Alatest" / "rootfs/bin/busybox"));
  auto list = run("image list", "SANDCI_STATE_DIR=" + quote(state_));
  EXPECT_TRUE(contains(list.output, "envimg:latest")) << list.output;
}

TEST_F(CliImageTest, UnknownImageExplainsWhatToDo) {
  auto r = run("image inspect foo:1" + sd());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output, "sandci: image 'foo:1' is not in the image store (" + state_ +
                          "/images); build the default one with `sandci image build-default`, or add one with "
                          "`sandci image import NAME TARBALL` or `sandci image pull REF`\n");
}

TEST_F(CliImageTest, BadInputIsAUsageError) {
  sandci::testing::write_text(tmp_ / "junk.tar", std::string(3000, 'x'));
  auto junk = run("image import junk " + quote((tmp_ / "junk.tar").string()) + sd());
  EXPECT_EQ(junk.code, 2) << junk.output;
  EXPECT_TRUE(contains(junk.output, "as a tar archive")) << junk.output;

  TarBuilder().file("/etc/cron.d/evil", "x").write(tmp_ / "evil.tar");
  auto evil = run("image import evil " + quote((tmp_ / "evil.tar").string()) + sd());
  EXPECT_EQ(evil.code, 2) << evil.output;
  EXPECT_TRUE(contains(evil.output, "member '/etc/cron.d/evil' is an absolute path")) << evil.output;

  auto bad_name = run("image import Bad/Name " + quote((tmp_ / "junk.tar").string()) + sd());
  EXPECT_EQ(bad_name.code, 2);
  EXPECT_TRUE(contains(bad_name.output, "invalid image name 'Bad/Name'")) << bad_name.output;

  EXPECT_EQ(run("image" + sd()).code, 2);
  EXPECT_EQ(run("image import onlyname" + sd()).code, 2);
  EXPECT_FALSE(contains(run("image list" + sd()).output, "evil"));
}

TEST_F(CliImageTest, PullsFromALocalOciLayoutWithSkopeo) {
  TarBuilder top;
  top.file("etc/.wh.motd", "").file("etc/pulled", "yes\n");
  std::string config = sandci::testing::image_config_json({"PATH=/bin", "FROM_CONFIG=1"}, "/home/ci", "1000");
  sandci::testing::make_oci_layout(tmp_ / "layout", {busybox_rootfs(), top}, config, "v2", /*gzip_layers=*/true);

  auto pulled = run("image pull " + quote("oci:" + (tmp_ / "layout").string() + ":v2") + " local/app:v2" + sd());
  ASSERT_EQ(pulled.code, 0) << pulled.output;
  EXPECT_TRUE(contains(pulled.output, "as local/app:v2")) << pulled.output;
  auto inspect = run("image inspect local/app:v2" + sd());
  ASSERT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "env: FROM_CONFIG=1")) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "working_dir: /home/ci")) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "user: 1000")) << inspect.output;
  fs::path rootfs = fs::path(state_) / "images" / "local%2Fapp%3Av2" / "rootfs";
  EXPECT_EQ(sandci::testing::read_text(rootfs / "etc/pulled"), "yes\n");
  EXPECT_FALSE(fs::exists(rootfs / "etc/motd")) << "the whiteout of the second layer applies";
}

TEST_F(CliImageTest, PullsFromALocalDockerArchiveWithSkopeo) {
  std::string config = sandci::testing::image_config_json({"PATH=/bin"}, "/", "");
  sandci::testing::make_docker_save(tmp_ / "saved.tar", {busybox_rootfs()}, config, "saved:3", tmp_.path());
  auto pulled = run("image pull " + quote("docker-archive:" + (tmp_ / "saved.tar").string()) + " saved:3" + sd());
  ASSERT_EQ(pulled.code, 0) << pulled.output;
  EXPECT_TRUE(fs::exists(fs::path(state_) / "images" / "saved%3A3" / "rootfs/bin/busybox"));
  // The same archive imports directly too.
  auto imported = run("image import direct:3 " + quote((tmp_ / "saved.tar").string()) + sd());
  ASSERT_EQ(imported.code, 0) << imported.output;
}

TEST_F(CliImageTest, PullFailuresAreReported) {
  // Nothing listens on port 1 of the loopback address: an operational failure.
  auto unreachable = run("image pull docker://127.0.0.1:1/nothing:1 nothing:1" + sd());
  EXPECT_EQ(unreachable.code, 1) << unreachable.output;
  EXPECT_TRUE(contains(unreachable.output, "cannot pull docker://127.0.0.1:1/nothing:1")) << unreachable.output;
  auto unnamed = run("image pull oci:/nowhere:1" + sd());
  EXPECT_EQ(unnamed.code, 2) << unnamed.output;
  EXPECT_TRUE(contains(unnamed.output, "give a NAME")) << unnamed.output;
  EXPECT_FALSE(fs::exists(fs::path(state_) / "images" / "nothing%3A1"));
}

// The real debootstrap, once per machine: the image lives in a machine-wide cache
// state folder that later runs (and other tests) find already built.
TEST(CliImageBuildDefaultTest, BuildsDebianOnceThenReusesIt) {
  const char* env = std::getenv("SANDCI_IMAGE_TEST_CACHE");
  std::string cache = env != nullptr && *env != '\0' ? env : "/var/cache/sandci/image-test-state";
  auto first = run("image build-default --state-dir " + quote(cache));
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_TRUE(contains(first.output, "built debian:12") || contains(first.output, "debian:12 is already there"))
      << first.output;
  auto second = run("image build-default --state-dir " + quote(cache));
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_TRUE(contains(second.output, "debian:12 is already there")) << second.output;
  EXPECT_TRUE(contains(second.output, "--force")) << second.output;

  auto inspect = run("image inspect debian:12 --state-dir " + quote(cache));
  ASSERT_EQ(inspect.code, 0) << inspect.output;
  EXPECT_TRUE(contains(inspect.output, "env: PATH=/usr/local/sbin:")) << inspect.output;
  fs::path rootfs = fs::path(cache) / "images" / "debian%3A12" / "rootfs";
  EXPECT_TRUE(fs::exists(rootfs / "etc/ssl/certs/ca-certificates.crt"));
  EXPECT_TRUE(contains(sandci::testing::read_text(rootfs / "etc/os-release"), "bookworm"));
  std::string out = sandci::testing::command_output(
      "chroot " + quote(rootfs.string()) + " /bin/bash -c 'git --version && find /etc -maxdepth 0' 2>&1");
  EXPECT_TRUE(contains(out, "git version 2.")) << out;
  EXPECT_TRUE(contains(out, "/etc")) << out;
}

}  // namespace
