#include "sandbox/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <sstream>

#include "support/image_fixtures.h"

namespace sandci::sandbox {
namespace {

using sandci::testing::TarBuilder;
using sandci::testing::TempDir;
using sandci::testing::read_text;
namespace fs = std::filesystem;

class ImageStoreTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  fs::path state_ = tmp_ / "state";
  ImageStore store_{state_};

  // What an import left behind: nothing but images and their lock files.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    if (!fs::exists(store_.images_dir())) return out;
    for (const auto& e : fs::directory_iterator(store_.images_dir())) {
      std::string n = e.path().filename().string();
      if (n.starts_with(".") && !n.starts_with(".lock-")) out.push_back(n);
    }
    return out;
  }

  ImageError import_fails(const TarBuilder& tar, const std::string& name = "bad:1") {
    tar.write(tmp_ / "bad.tar");
    auto r = store_.import(name, tmp_ / "bad.tar");
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(store_.lookup(name).has_value()) << "a refused import must store nothing";
    EXPECT_TRUE(leftovers().empty());
    return r ? ImageError{} : r.error();
  }
};

TarBuilder small_rootfs() {
  TarBuilder t;
  t.dir("./").dir("./bin").dir("./etc").dir("./usr").dir("./usr/bin");
  t.file("./usr/bin/tool", "#!/bin/sh\necho tool\n", 0755);
  t.symlink("./bin/tool", "../usr/bin/tool");
  t.symlink("./etc/abs", "/usr/bin/tool");  // absolute symlinks are normal in a rootfs
  t.hardlink("./usr/bin/tool2", "./usr/bin/tool");
  t.file("./etc/os-release", "ID=tiny\n", 0600);
  return t;
}

TEST(ImageNameTest, AddsLatestAndKeepsRegistryPorts) {
  EXPECT_EQ(normalize_image_name("myimg").value(), "myimg:latest");
  EXPECT_EQ(normalize_image_name("debian:12").value(), "debian:12");
  EXPECT_EQ(normalize_image_name("ubuntu:22.04").value(), "ubuntu:22.04");
  EXPECT_EQ(normalize_image_name("localhost:5000/team/app").value(), "localhost:5000/team/app:latest");
  EXPECT_EQ(normalize_image_name("docker.io/library/debian:bookworm-slim").value(),
            "docker.io/library/debian:bookworm-slim");
}

TEST(ImageNameTest, RefusesWhatIsNotAName) {
  for (const char* bad : {"", "Foo", "../etc", "a/../b", "a:", ":tag", "a b", "a@sha256:00", "/abs", "a:b/c:"}) {
    auto r = normalize_image_name(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
    EXPECT_NE(r.error().message.find("invalid image name"), std::string::npos);
  }
}

TEST_F(ImageStoreTest, UnknownImageSaysHowToGetOne) {
  auto r = store_.lookup("foo:1");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kNotFound);
  EXPECT_EQ(r.error().message,
            "image 'foo:1' is not in the image store (" + store_.images_dir().string() +
                "); build the default one with `sandci image build-default`, or add one with "
                "`sandci image import NAME TARBALL` or `sandci image pull REF`");
}

TEST_F(ImageStoreTest, ImportsPlainRootfsTarball) {
  small_rootfs().write(tmp_ / "rootfs.tar");
  auto image = store_.import("tiny", tmp_ / "rootfs.tar");
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->name, "tiny:latest");
  const fs::path root = image->rootfs;
  EXPECT_EQ(read_text(root / "usr/bin/tool"), "#!/bin/sh\necho tool\n");
  EXPECT_EQ(fs::read_symlink(root / "bin/tool"), "../usr/bin/tool");
  EXPECT_EQ(fs::read_symlink(root / "etc/abs"), "/usr/bin/tool");
  EXPECT_TRUE(fs::equivalent(root / "usr/bin/tool", root / "usr/bin/tool2"));
  EXPECT_EQ(fs::status(root / "etc/os-release").permissions() & fs::perms::all, fs::perms(0600));
  EXPECT_EQ(fs::status(root / "usr/bin/tool").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_GT(image->size_bytes, 0u);
  EXPECT_TRUE(image->config.env.empty());

  auto again = store_.lookup("tiny:latest");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->rootfs, root);
  EXPECT_NE(again->source.find("rootfs tarball"), std::string::npos);
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(ImageStoreTest, ImportsGzipRootfsTarball) {
  small_rootfs().write(tmp_ / "rootfs.tar.gz", /*gzip=*/true);
  auto image = store_.import("tiny:gz", tmp_ / "rootfs.tar.gz");
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(read_text(image->rootfs / "etc/os-release"), "ID=tiny\n");
}

TEST_F(ImageStoreTest, DockerSaveLayersApplyInOrderWithWhiteouts) {
  TarBuilder base;
  base.dir("etc").file("etc/gone", "1").file("etc/changed", "old").dir("opt").dir("opt/x");
  base.file("opt/x/old1", "1").file("opt/x/old2", "2").dir("keep").file("keep/k", "k");
  base.file("shared", "same inode").hardlink("shared-link", "shared");
  TarBuilder top;
  top.file("etc/.wh.gone", "").file("etc/changed", "new");
  top.file("opt/x/.wh..wh..opq", "").file("opt/x/new", "3");
  top.file("shared", "replaced");  // must not change the other hard link's content
  std::string config = sandci::testing::image_config_json({"PATH=/usr/bin:/bin", "GREETING=hello world"},
                                                          "/srv/app", "1000:1000");
  sandci::testing::make_docker_save(tmp_ / "saved.tar", {base, top}, config, "layered:2", tmp_.path());

  auto image = store_.import("layered:2", tmp_ / "saved.tar");
  ASSERT_TRUE(image.has_value()) << image.error().message;
  const fs::path root = image->rootfs;
  EXPECT_FALSE(fs::exists(root / "etc/gone"));
  EXPECT_FALSE(fs::exists(root / "etc/.wh.gone"));
  EXPECT_EQ(read_text(root / "etc/changed"), "new");
  EXPECT_FALSE(fs::exists(root / "opt/x/old1"));
  EXPECT_FALSE(fs::exists(root / "opt/x/old2"));
  EXPECT_FALSE(fs::exists(root / "opt/x/.wh..wh..opq"));
  EXPECT_EQ(read_text(root / "opt/x/new"), "3");
  EXPECT_EQ(read_text(root / "keep/k"), "k");
  EXPECT_EQ(read_text(root / "shared"), "replaced");
  EXPECT_EQ(read_text(root / "shared-link"), "same inode");
  EXPECT_EQ(image->config.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "GREETING=hello world"}));
  EXPECT_EQ(image->config.working_dir, "/srv/app");
  EXPECT_EQ(image->config.user, "1000:1000");
  // The config survives the round trip through config.json.
  auto again = store_.lookup("layered:2");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->config.env, image->config.env);
  EXPECT_EQ(again->config.working_dir, "/srv/app");
  EXPECT_EQ(again->config.user, "1000:1000");
  // Only the root filesystem and config.json are kept, not the archive's layers.
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(root.parent_path())) kept.push_back(e.path().filename());
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"config.json", "rootfs"}));
}

TEST_F(ImageStoreTest, ImportsOciLayoutArchiveAndFolder) {
  TarBuilder base;
  base.dir("etc").file("etc/a", "a").file("etc/b", "b");
  TarBuilder top;
  top.file("etc/.wh.a", "").file("etc/c", "c");
  std::string config = sandci::testing::image_config_json({"ONLY=oci"}, "/work", "nobody");
  sandci::testing::make_oci_layout(tmp_ / "layout", {base, top}, config, "v3", /*gzip_layers=*/true);
  sandci::testing::tar_folder(tmp_ / "layout", tmp_ / "oci.tar");

  auto from_archive = store_.import("oci:v3", tmp_ / "oci.tar");
  ASSERT_TRUE(from_archive.has_value()) << from_archive.error().message;
  EXPECT_FALSE(fs::exists(from_archive->rootfs / "etc/a"));
  EXPECT_EQ(read_text(from_archive->rootfs / "etc/b"), "b");
  EXPECT_EQ(read_text(from_archive->rootfs / "etc/c"), "c");
  EXPECT_EQ(from_archive->config.env, std::vector<std::string>{"ONLY=oci"});
  EXPECT_EQ(from_archive->config.working_dir, "/work");
  EXPECT_EQ(from_archive->config.user, "nobody");

  auto from_folder = store_.import("oci-folder", tmp_ / "layout");
  ASSERT_TRUE(from_folder.has_value()) << from_folder.error().message;
  EXPECT_EQ(read_text(from_folder->rootfs / "etc/c"), "c");
  EXPECT_TRUE(fs::exists(tmp_ / "layout/index.json")) << "the source folder is left alone";
}

TEST_F(ImageStoreTest, RefusesAbsoluteMemberNames) {
  auto e = import_fails(TarBuilder().dir("etc").file("/etc/evil", "x"));
  EXPECT_EQ(e.kind, ImageErrorKind::kInvalid);
  EXPECT_NE(e.message.find("'/etc/evil' is an absolute path"), std::string::npos) << e.message;
}

TEST_F(ImageStoreTest, RefusesDotDotMembers) {
  auto e = import_fails(TarBuilder().dir("a").file("a/../../escaped", "x"));
  EXPECT_EQ(e.kind, ImageErrorKind::kInvalid);
  EXPECT_NE(e.message.find("'a/../../escaped' contains a '..' component"), std::string::npos) << e.message;
  EXPECT_FALSE(fs::exists(store_.images_dir().parent_path() / "escaped"));
  EXPECT_FALSE(fs::exists(store_.images_dir() / "escaped"));
}

TEST_F(ImageStoreTest, RefusesHardLinksOutOfTheTree) {
  auto e = import_fails(TarBuilder().file("x", "x").hardlink("passwd", "../../../../etc/passwd"));
  EXPECT_EQ(e.kind, ImageErrorKind::kInvalid);
  EXPECT_NE(e.message.find("hard link"), std::string::npos) << e.message;
  auto abs = import_fails(TarBuilder().hardlink("shadow", "/etc/shadow"));
  EXPECT_NE(abs.message.find("hard link"), std::string::npos) << abs.message;
}

TEST_F(ImageStoreTest, NeverWritesThroughASymlink) {
  fs::create_directories(tmp_ / "outside");
  auto e = import_fails(TarBuilder().symlink("link", (tmp_ / "outside").string()).file("link/evil", "x"));
  EXPECT_EQ(e.kind, ImageErrorKind::kInvalid);
  EXPECT_NE(e.message.find("'link/evil' would be written through 'link'"), std::string::npos) << e.message;
  EXPECT_TRUE(fs::is_empty(tmp_ / "outside"));
}

TEST_F(ImageStoreTest, WhiteoutsNeverDeleteThroughASymlink) {
  fs::create_directories(tmp_ / "outside");
  sandci::testing::write_text(tmp_ / "outside/precious", "keep me");
  TarBuilder base;
  base.symlink("link", (tmp_ / "outside").string());
  TarBuilder top;
  top.file("link/.wh.precious", "");
  sandci::testing::make_docker_save(tmp_ / "saved.tar", {base, top}, sandci::testing::image_config_json({}, "", ""),
                                    "evil:1", tmp_.path());
  auto r = store_.import("evil:1", tmp_ / "saved.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("whiteout"), std::string::npos) << r.error().message;
  EXPECT_EQ(read_text(tmp_ / "outside/precious"), "keep me");
}

TEST_F(ImageStoreTest, RefusesManifestPathsOutsideTheArchive) {
  TarBuilder archive;
  archive.file("manifest.json", R"([{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":[]}])");
  archive.write(tmp_ / "saved.tar");
  auto r = store_.import("x:1", tmp_ / "saved.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("outside the archive"), std::string::npos) << r.error().message;
}

TEST_F(ImageStoreTest, NeverReadsBlobsThroughSymlinksInTheArchive) {
  // An OCI archive whose blobs folder points at the host: its "layer" would copy a
  // host file into the image.
  sandci::testing::write_text(tmp_ / ("host/sha256/" + std::string(64, 'a')), "host secret");
  TarBuilder archive;
  archive.file("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  archive.symlink("blobs", (tmp_ / "host").string());
  archive.file("index.json", R"({"schemaVersion":2,"manifests":[{"mediaType":)"
                             R"("application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                                 std::string(64, 'a') + R"(","size":11}]})");
  archive.write(tmp_ / "oci.tar");
  auto r = store_.import("sneaky:1", tmp_ / "oci.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos) << r.error().message;
}

TEST_F(ImageStoreTest, RefusesWhatIsNotATarball) {
  sandci::testing::write_text(tmp_ / "junk.tar", std::string(5000, 'j'));
  auto r = store_.import("junk", tmp_ / "junk.tar");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("tar archive"), std::string::npos) << r.error().message;
  auto missing = store_.import("junk", tmp_ / "nope.tar");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(ImageStoreTest, ListsAndRemoves) {
  auto empty = store_.list();
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  small_rootfs().write(tmp_ / "r.tar");
  ASSERT_TRUE(store_.import("zeta:1", tmp_ / "r.tar").has_value());
  ASSERT_TRUE(store_.import("alpha/beta", tmp_ / "r.tar").has_value());
  auto images = store_.list();
  ASSERT_TRUE(images.has_value());
  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[0].name, "alpha/beta:latest");
  EXPECT_EQ((*images)[1].name, "zeta:1");
  EXPECT_GT((*images)[0].size_bytes, 0u);
  EXPECT_EQ((*images)[0].created.size(), 20u);  // 2026-11-29T00:00:00Z

  ASSERT_TRUE(store_.remove("zeta:1").has_value());
  EXPECT_FALSE(store_.lookup("zeta:1").has_value());
  images = store_.list();
  ASSERT_EQ(images->size(), 1u);
  auto gone = store_.remove("zeta:1");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().kind, ImageErrorKind::kNotFound);
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(ImageStoreTest, ImportReplacesAnImageWhole) {
  TarBuilder().file("version", "1").file("only-in-1", "x").write(tmp_ / "v1.tar");
  TarBuilder().file("version", "2").write(tmp_ / "v2.tar");
  ASSERT_TRUE(store_.import("app", tmp_ / "v1.tar").has_value());
  auto second = store_.import("app", tmp_ / "v2.tar");
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(read_text(second->rootfs / "version"), "2");
  EXPECT_FALSE(fs::exists(second->rootfs / "only-in-1"));
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(ImageStoreTest, LaterLayersReplaceFilesWithFoldersAndBack) {
  TarBuilder base;
  base.file("was-file", "f").dir("was-dir").file("was-dir/inner", "i").file("lib.so", "lib");
  TarBuilder top;
  top.dir("was-file").file("was-file/now-inside", "n").file("was-dir", "now a file");
  top.hardlink("lib-link.so", "lib.so");  // a hard link to a lower layer's file
  sandci::testing::make_docker_save(tmp_ / "saved.tar", {base, top}, sandci::testing::image_config_json({}, "", ""),
                                    "swap:1", tmp_.path());
  auto image = store_.import("swap:1", tmp_ / "saved.tar");
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(read_text(image->rootfs / "was-file/now-inside"), "n");
  EXPECT_EQ(read_text(image->rootfs / "was-dir"), "now a file");
  EXPECT_TRUE(fs::equivalent(image->rootfs / "lib.so", image->rootfs / "lib-link.so"));
}

// Readers never see a replaced image missing or half written: the new folder is
// swapped in with one renameat2(RENAME_EXCHANGE).
TEST_F(ImageStoreTest, ReadersAlwaysFindTheImageWhileItIsReplaced) {
  TarBuilder many;
  for (int i = 0; i < 100; ++i) many.file("f" + std::to_string(i), std::string(100, 'x'));
  many.write(tmp_ / "many.tar");
  ASSERT_TRUE(store_.import("busy:1", tmp_ / "many.tar").has_value());
  std::atomic<bool> done{false};
  std::atomic<int> lookups{0}, misses{0};
  std::thread reader([&] {
    ImageStore other(state_);
    while (!done) {
      auto r = other.lookup("busy:1");
      if (!r || r->name != "busy:1") ++misses;
      ++lookups;
      std::this_thread::yield();  // two cores: leave the writer room
    }
  });
  for (int i = 0; i < 3; ++i) {
    auto r = store_.import("busy:1", tmp_ / "many.tar");
    EXPECT_TRUE(r.has_value()) << r.error().message;
  }
  done = true;
  reader.join();
  EXPECT_GT(lookups.load(), 0);
  EXPECT_EQ(misses.load(), 0);
  EXPECT_TRUE(leftovers().empty());
}

TEST(ResolveImageUserTest, UsesTheImagesOwnPasswdAndGroup) {
  TempDir tmp;
  sandci::testing::write_text(tmp / "etc/passwd",
                              "root:x:0:0:root:/root:/bin/bash\nbuilder:x:1001:1002::/home/builder:/bin/sh\n");
  sandci::testing::write_text(tmp / "etc/group", "root:x:0:\nci:x:1002:\nstaff:x:50:\n");
  auto ids = [&](std::string_view user) { return resolve_image_user(tmp.path(), user); };
  EXPECT_EQ(ids("")->uid, 0u);
  EXPECT_EQ(ids("builder")->uid, 1001u);
  EXPECT_EQ(ids("builder")->gid, 1002u);
  EXPECT_EQ(ids("1001")->gid, 1002u);  // a known uid takes its passwd group
  EXPECT_EQ(ids("4242")->uid, 4242u);
  EXPECT_EQ(ids("4242")->gid, 0u);     // an unknown uid gets group 0, as in Docker
  EXPECT_EQ(ids("builder:staff")->gid, 50u);
  EXPECT_EQ(ids("7:8")->uid, 7u);
  EXPECT_EQ(ids("7:8")->gid, 8u);
  auto missing = ids("nobody-here");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(missing.error().message.find("'nobody-here' is not in its /etc/passwd"), std::string::npos);
  EXPECT_FALSE(ids("builder:nogroup").has_value());
}

TEST(ResolveImageUserTest, NeverReadsThroughASymlink) {
  TempDir tmp;
  sandci::testing::write_text(tmp / "host/passwd", "sneaky:x:4000:4000::/:/bin/sh\n");
  fs::create_directories(tmp / "rootfs/etc");
  fs::create_symlink(tmp / "host/passwd", tmp / "rootfs/etc/passwd");
  EXPECT_FALSE(resolve_image_user(tmp / "rootfs", "sneaky").has_value());
  fs::create_directories(tmp / "rootfs2");
  fs::create_directory_symlink(tmp / "host", tmp / "rootfs2/etc");
  EXPECT_FALSE(resolve_image_user(tmp / "rootfs2", "sneaky").has_value());
}

TEST(DebianMirrorTest, TakesTheFirstNonSecurityUri) {
  const std::string deb822 =
      "Types: deb\n"
      "# a comment\n"
      "URIs: http://security.mirror.test/debian-security\n"
      "Suites: bookworm-security\n"
      "Components: main\n"
      "\n"
      "Types: deb\n"
      "URIs: http://mirror.test/debian\n"
      "Suites: bookworm bookworm-updates\n"
      "Components: main\n";
  EXPECT_EQ(parse_debian_mirror(deb822).value(), "http://mirror.test/debian");
  EXPECT_EQ(parse_debian_mirror("deb [arch=amd64] http://mirror.test/debian bookworm main\n").value(),
            "http://mirror.test/debian");
  EXPECT_FALSE(parse_debian_mirror("# nothing here\n").has_value());
}

}  // namespace
}  // namespace sandci::sandbox

namespace sandci::sandbox {
namespace {

// build_default's own logic (mirror, arguments, reuse, --force, failures) against a
// stand-in debootstrap on PATH; the real one runs in tests/integration/agent.
class BuildDefaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_ / "bin");
    sandci::testing::write_text(tmp_ / "bin/debootstrap", R"(#!/bin/sh
echo "$@" >> "$FAKE_DEBOOTSTRAP_LOG"
if [ -n "$FAKE_DEBOOTSTRAP_FAIL" ]; then echo "E: Couldn't download packages: bash"; exit 1; fi
mkdir -p "$4/bin" "$4/etc" "$4/var/cache/apt/archives" "$4/var/lib/apt/lists/partial"
echo fake > "$4/bin/bash"
echo deb > "$4/var/cache/apt/archives/bash_5.2.deb"
echo list > "$4/var/lib/apt/lists/mirror_dists_bookworm_InRelease"
echo host > "$4/etc/hostname"
)");
    fs::permissions(tmp_ / "bin/debootstrap", fs::perms(0755));
    sandci::testing::write_text(tmp_ / "debian.sources",
                                "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\n\n"
                                "Types: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\n");
    old_path_ = std::getenv("PATH");
    setenv("PATH", ((tmp_ / "bin").string() + ":" + old_path_).c_str(), 1);
    setenv("FAKE_DEBOOTSTRAP_LOG", (tmp_ / "calls.log").c_str(), 1);
    unsetenv("FAKE_DEBOOTSTRAP_FAIL");
    options_.sources_file = (tmp_ / "debian.sources").string();
  }
  void TearDown() override {
    setenv("PATH", old_path_.c_str(), 1);
    unsetenv("FAKE_DEBOOTSTRAP_LOG");
    unsetenv("FAKE_DEBOOTSTRAP_FAIL");
  }
  std::vector<std::string> calls() const {
    std::vector<std::string> out;
    std::istringstream in(read_text(tmp_ / "calls.log"));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  TempDir tmp_;
  ImageStore store_{tmp_ / "state"};
  BuildDefaultOptions options_;
  std::string old_path_;
};

TEST_F(BuildDefaultTest, BuildsOnceWithTheMachinesMirrorThenReuses) {
  auto first = store_.build_default(options_);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(first->built);
  EXPECT_EQ(first->image.name, "debian:12");
  ASSERT_EQ(calls().size(), 1u);
  const std::string prefix = "--variant=minbase --include=bash,git,ca-certificates,coreutils,findutils bookworm ";
  EXPECT_TRUE(calls()[0].starts_with(prefix)) << calls()[0];
  EXPECT_TRUE(calls()[0].ends_with(" http://mirror.test/debian")) << calls()[0];
  const fs::path root = first->image.rootfs;
  EXPECT_EQ(read_text(root / "bin/bash"), "fake\n");
  EXPECT_FALSE(fs::exists(root / "var/cache/apt/archives/bash_5.2.deb"));
  EXPECT_FALSE(fs::exists(root / "var/lib/apt/lists/mirror_dists_bookworm_InRelease"));
  EXPECT_TRUE(fs::is_directory(root / "var/lib/apt/lists/partial"));
  EXPECT_EQ(read_text(root / "etc/hostname"), "sandci\n");
  ASSERT_FALSE(first->image.config.env.empty());
  EXPECT_TRUE(first->image.config.env[0].starts_with("PATH=/usr/local/sbin:"));

  auto second = store_.build_default(options_);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->built);
  EXPECT_EQ(calls().size(), 1u) << "an existing image is reused, not rebuilt";

  options_.force = true;
  auto forced = store_.build_default(options_);
  ASSERT_TRUE(forced.has_value()) << forced.error().message;
  EXPECT_TRUE(forced->built);
  EXPECT_EQ(calls().size(), 2u);
  EXPECT_TRUE(store_.lookup("debian:12").has_value());
}

TEST_F(BuildDefaultTest, DebootstrapFailureQuotesItsOutputAndStoresNothing) {
  setenv("FAKE_DEBOOTSTRAP_FAIL", "1", 1);
  auto r = store_.build_default(options_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kFailed);
  EXPECT_NE(r.error().message.find("debootstrap exited with 1"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("E: Couldn't download packages: bash"), std::string::npos) << r.error().message;
  EXPECT_FALSE(store_.lookup("debian:12").has_value());
  for (const auto& e : fs::directory_iterator(store_.images_dir()))
    EXPECT_TRUE(e.path().filename().string().starts_with(".lock-")) << e.path();
}

TEST_F(BuildDefaultTest, VariantWithMorePackagesUnderItsOwnName) {
  options_.name = "debian-build:12";
  options_.extra_packages = {"gcc", "make", "libc6-dev"};
  auto built = store_.build_default(options_);
  ASSERT_TRUE(built.has_value()) << built.error().message;
  EXPECT_EQ(built->image.name, "debian-build:12");
  ASSERT_EQ(calls().size(), 1u);
  EXPECT_TRUE(calls()[0].starts_with(
      "--variant=minbase --include=bash,git,ca-certificates,coreutils,findutils,gcc,make,libc6-dev bookworm "))
      << calls()[0];
  EXPECT_TRUE(store_.lookup("debian-build:12").has_value());
  EXPECT_FALSE(store_.lookup("debian:12").has_value()) << "the default image is a different one";
}

TEST_F(BuildDefaultTest, RefusesWhatIsNotAPackageName) {
  options_.name = "x:1";
  options_.extra_packages = {"gcc --foreign"};
  auto r = store_.build_default(options_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ImageErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("not a Debian package name"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(tmp_ / "calls.log"));
}

TEST_F(BuildDefaultTest, NoMirrorNoBuild) {
  options_.sources_file = (tmp_ / "missing.sources").string();
  auto r = store_.build_default(options_);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("missing.sources"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(tmp_ / "calls.log"));
}

}  // namespace
}  // namespace sandci::sandbox
