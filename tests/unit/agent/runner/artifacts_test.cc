#include "agent/runner/artifacts.h"
#include "support/temp_dir.h"
#include "support/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sandci::agent {
namespace {

namespace fs = std::filesystem;
using sandci::testing::read_file;
using sandci::testing::write_file;
using sandci::testing::TempDir;

std::vector<PathPattern> patterns(std::string_view input) {
  auto p = parse_path_patterns(input);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error());
  return p.value_or(std::vector<PathPattern>{});
}

// A workspace as a build job leaves it.
class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = tmp_.path() / "ws";
    write_file(ws_ / "build/hello", "ELF-hello");
    write_file(ws_ / "build/test_hello", "ELF-test");
    write_file(ws_ / "build/obj/hello.o", "obj");
    write_file(ws_ / "build/obj/lib.o", "obj2");
    write_file(ws_ / "build/.cache/state", "hidden");
    write_file(ws_ / "src/hello.c", "int main(){}");
    write_file(ws_ / "src/lib/greet.c", "greet");
    write_file(ws_ / "src/lib/greet.h", "h");
    write_file(ws_ / "README.md", "readme");
    fs::permissions(ws_ / "build/hello", fs::perms::owner_exec, fs::perm_options::add);
  }

  std::vector<std::string> files(std::string_view input, ExpandOptions o = {}) {
    auto r = expand_path_patterns(ws_, patterns(input), o);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error());
    return r ? r->files : std::vector<std::string>{};
  }
  std::string root(std::string_view input) {
    auto r = expand_path_patterns(ws_, patterns(input));
    return r ? r->root : "<error>";
  }
  std::string expand_error(std::string_view input) {
    auto r = expand_path_patterns(ws_, patterns(input));
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error();
  }

  TempDir tmp_{"sandci-artifacts-"};
  fs::path ws_;
};

using Files = std::vector<std::string>;

TEST(ArtifactName, AcceptsOrdinaryNames) {
  for (const char* n : {"hello", "hello-O2", "build output (linux)", "a.b_c", "v1.2.3"})
    EXPECT_TRUE(validate_artifact_name(n).has_value()) << n;
}

TEST(ArtifactName, RefusesUnsafeNames) {
  for (const std::string& n : std::vector<std::string>{
           "", "a/b", "a\\b", "..", "a..b", ".", "a:b", "a*", "a?", "a\"b", "a<b", "a>b", "a|b",
           "a\nb", std::string("a\0b", 3), "tab\there", " lead", "trail ", std::string(256, 'x')}) {
    EXPECT_FALSE(validate_artifact_name(n).has_value()) << n;
  }
  EXPECT_EQ(validate_artifact_name("a:b").error(),
            "artifact name 'a:b' holds ':'; not allowed: \" : < > | * ? \\ /");
}

TEST(IfNoFilesFound, ParsesTheThreeValues) {
  EXPECT_EQ(parse_if_no_files_found(""), IfNoFilesFound::kWarn);
  EXPECT_EQ(parse_if_no_files_found("warn"), IfNoFilesFound::kWarn);
  EXPECT_EQ(parse_if_no_files_found("error"), IfNoFilesFound::kError);
  EXPECT_EQ(parse_if_no_files_found("ignore"), IfNoFilesFound::kIgnore);
  EXPECT_FALSE(parse_if_no_files_found("fail").has_value());
}

TEST(PathPatterns, NormalisesAndSplitsLines) {
  auto p = patterns("  build/./obj/  \n\n# comment\n!build/obj/lib.o\nsrc/**/**/*.c\na/b/../c\n");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].text(), "build/obj");
  EXPECT_FALSE(p[0].exclude);
  EXPECT_EQ(p[1].text(), "build/obj/lib.o");
  EXPECT_TRUE(p[1].exclude);
  EXPECT_EQ(p[2].text(), "src/**/*.c");
  EXPECT_EQ(p[3].text(), "a/c");
  EXPECT_EQ(patterns(".")[0].text(), ".");
}

TEST(PathPatterns, RefusesEscapes) {
  auto err = [](std::string_view in) {
    auto r = parse_path_patterns(in);
    EXPECT_FALSE(r.has_value()) << in;
    return r ? std::string() : r.error();
  };
  EXPECT_EQ(err("/etc/passwd"),
            "path '/etc/passwd' is absolute; paths are relative to the workspace");
  EXPECT_EQ(err("build\n../secrets"), "path '../secrets' leaves the workspace");
  EXPECT_EQ(err("a/../../b"), "path 'a/../../b' leaves the workspace");
  EXPECT_EQ(err("!/etc"), "path '/etc' is absolute; paths are relative to the workspace");
  EXPECT_EQ(err("~/.ssh/id_rsa"),
            "path '~/.ssh/id_rsa' starts with '~'; paths are relative to the workspace");
  EXPECT_EQ(err("*/../x"), "path '*/../x' has '..' after a wildcard");
  EXPECT_EQ(err("!build/obj"), "path: no file pattern given");
  EXPECT_EQ(err("\n  \n"), "path: no file pattern given");
}

TEST_F(ArtifactsTest, FolderSelectsEverythingBeneathButHiddenFiles) {
  EXPECT_EQ(files("build/"),
            (Files{"build/hello", "build/obj/hello.o", "build/obj/lib.o", "build/test_hello"}));
  EXPECT_EQ(root("build/"), "build");
  EXPECT_EQ(files("build", {.include_hidden_files = true}),
            (Files{"build/.cache/state", "build/hello", "build/obj/hello.o", "build/obj/lib.o",
                   "build/test_hello"}));
}

TEST_F(ArtifactsTest, Wildcards) {
  EXPECT_EQ(files("build/*"),
            (Files{"build/hello", "build/obj/hello.o", "build/obj/lib.o", "build/test_hello"}));
  EXPECT_EQ(files("build/*_hello"), (Files{"build/test_hello"}));
  EXPECT_EQ(files("build/obj/?ib.o"), (Files{"build/obj/lib.o"}));
  EXPECT_EQ(files("**/*.c"), (Files{"src/hello.c", "src/lib/greet.c"}));
  EXPECT_EQ(root("**/*.c"), "");
  EXPECT_EQ(files("src/**/greet.[ch]"), (Files{"src/lib/greet.c", "src/lib/greet.h"}));
  EXPECT_EQ(root("src/**/greet.[ch]"), "src");
  EXPECT_EQ(files("*.md"), (Files{"README.md"}));
  // Wildcards match dot files too when hidden files are included (as @actions/glob).
  EXPECT_EQ(files("build/*/state", {.include_hidden_files = true}), (Files{"build/.cache/state"}));
  EXPECT_EQ(files("build/*/state"), Files{});
  // A hidden folder named literally is searched; hidden files beneath it are not.
  write_file(ws_ / ".out/a", "a");
  write_file(ws_ / ".out/.b", "b");
  EXPECT_EQ(files(".out"), (Files{".out/a"}));
}

TEST_F(ArtifactsTest, ExclusionsAndLaterLinesWin) {
  EXPECT_EQ(files("build\n!build/obj\n"), (Files{"build/hello", "build/test_hello"}));
  EXPECT_EQ(files("build\n!build/obj\nbuild/obj/lib.o\n"),
            (Files{"build/hello", "build/obj/lib.o", "build/test_hello"}));
  EXPECT_EQ(files("**/*.o\n!**/hello.o"), (Files{"build/obj/lib.o"}));
}

TEST_F(ArtifactsTest, RootIsTheCommonFolderOfSeveralPatterns) {
  EXPECT_EQ(root("build/obj\nbuild/hello"), "build");
  EXPECT_EQ(root("build\nsrc/lib"), "");
  // A single file named as such is stored without its folders.
  EXPECT_EQ(files("build/obj/lib.o"), (Files{"build/obj/lib.o"}));
  EXPECT_EQ(root("build/obj/lib.o"), "build/obj");
}

TEST_F(ArtifactsTest, NothingMatchingIsAnEmptyList) {
  EXPECT_EQ(files("dist/"), Files{});
  EXPECT_EQ(files("build/*.zip"), Files{});
}

TEST_F(ArtifactsTest, SymlinkOutOfTheWorkspaceIsRefused) {
  fs::create_symlink("/etc/passwd", ws_ / "build/passwd");
  EXPECT_EQ(expand_error("build/"),
            "symbolic link 'build/passwd' points outside the workspace; refused");
  EXPECT_EQ(expand_error("build/passwd"),
            "symbolic link 'build/passwd' points outside the workspace; refused");
}

TEST_F(ArtifactsTest, RelativeSymlinkClimbingOutIsRefused) {
  write_file(tmp_.path() / "host-secret", "secret");
  fs::create_symlink("../../host-secret", ws_ / "build/leak");
  EXPECT_EQ(expand_error("build/*"),
            "symbolic link 'build/leak' points outside the workspace; refused");
}

TEST_F(ArtifactsTest, FolderSymlinkOnTheWayOutIsRefused) {
  fs::create_symlink("/etc", ws_ / "etc");
  EXPECT_EQ(expand_error("etc/passwd"),
            "symbolic link 'etc' points outside the workspace; refused");
}

TEST_F(ArtifactsTest, SymlinksInsideTheWorkspace) {
  fs::create_symlink("hello", ws_ / "build/hello-link");  // file: kept
  fs::create_symlink("../src", ws_ / "build/src-link");   // folder: not descended
  auto r = expand_path_patterns(ws_, patterns("build"));
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->files, (Files{"build/hello", "build/hello-link", "build/obj/hello.o",
                             "build/obj/lib.o", "build/test_hello"}));
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            "symbolic link 'build/src-link' does not lead to a regular file; skipped");
}

TEST_F(ArtifactsTest, DanglingSymlinkIsAnError) {
  fs::create_symlink("missing", ws_ / "build/dangling");
  EXPECT_EQ(expand_error("build"), "symbolic link 'build/dangling' is dangling or unreadable");
}

TEST(DownloadPath, NormalisesAndRefusesEscapes) {
  EXPECT_EQ(resolve_download_path("").value(), "");
  EXPECT_EQ(resolve_download_path("./build/").value(), "build");
  EXPECT_EQ(resolve_download_path(" out/x/.. ").value(), "out");
  EXPECT_FALSE(resolve_download_path("..").has_value());
  EXPECT_FALSE(resolve_download_path("/tmp/x").has_value());
  EXPECT_FALSE(resolve_download_path("~/x").has_value());
}

TEST_F(ArtifactsTest, UploadThenDownloadRoundTrip) {
  ArtifactStore store(tmp_.path() / "run");
  auto up = store.upload("hello-O2", ws_, "build/\n!build/obj/");
  ASSERT_TRUE(up.has_value()) << up.error();
  EXPECT_TRUE(up->uploaded);
  EXPECT_EQ(up->file_count, 2u);
  EXPECT_EQ(up->bytes, 17u);
  EXPECT_EQ(store.names(), (Files{"hello-O2"}));

  fs::path dest = tmp_.path() / "dest";
  auto down = store.download("hello-O2", dest, "build");
  ASSERT_TRUE(down.has_value()) << down.error();
  EXPECT_EQ(down->file_count, 2u);
  EXPECT_EQ(read_file(dest / "build/hello"), "ELF-hello");
  EXPECT_EQ(read_file(dest / "build/test_hello"), "ELF-test");
  EXPECT_FALSE(fs::exists(dest / "build/obj"));
  // The executable bit survives; the test binary was not executable.
  EXPECT_NE(fs::status(dest / "build/hello").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  EXPECT_EQ(fs::status(dest / "build/test_hello").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  // The staging area is gone.
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "run/artifacts-staging"));
}

TEST_F(ArtifactsTest, UploadKeepsPathsBelowTheRoot) {
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("sources", ws_, "src/**/*.c").has_value());
  fs::path dest = tmp_.path() / "dest";
  ASSERT_TRUE(store.download("sources", dest).has_value());
  EXPECT_EQ(read_file(dest / "hello.c"), "int main(){}");
  EXPECT_EQ(read_file(dest / "lib/greet.c"), "greet");
}

TEST_F(ArtifactsTest, UploadThroughAnInWorkspaceLinkCopiesTheFile) {
  fs::create_symlink("../README.md", ws_ / "build/README");
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("docs", ws_, "build/README").has_value());
  fs::path dest = tmp_.path() / "dest";
  ASSERT_TRUE(store.download("docs", dest).has_value());
  EXPECT_EQ(read_file(dest / "README"), "readme");
  EXPECT_FALSE(fs::is_symlink(dest / "README"));
}

TEST_F(ArtifactsTest, UploadRefusesSymlinkToEtc) {
  fs::create_symlink("/etc/hostname", ws_ / "build/hostname");
  ArtifactStore store(tmp_.path() / "run");
  auto up = store.upload("leak", ws_, "build/");
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error(), "symbolic link 'build/hostname' points outside the workspace; refused");
  EXPECT_TRUE(store.names().empty());
  EXPECT_FALSE(fs::exists(tmp_.path() / "run/artifacts/leak"));
}

TEST_F(ArtifactsTest, SameNameTwiceIsAnErrorUnlessOverwrite) {
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("out", ws_, "README.md").has_value());
  auto again = store.upload("out", ws_, "build/hello");
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().find("already uploaded in this run"), std::string::npos) << again.error();

  ArtifactStore::UploadOptions overwrite;
  overwrite.overwrite = true;
  ASSERT_TRUE(store.upload("out", ws_, "build/hello", overwrite).has_value());
  fs::path dest = tmp_.path() / "dest";
  ASSERT_TRUE(store.download("out", dest).has_value());
  EXPECT_EQ(read_file(dest / "hello"), "ELF-hello");
  EXPECT_FALSE(fs::exists(dest / "README.md"));
}

TEST_F(ArtifactsTest, ConcurrentUploadsOfOneNameStoreItOnce) {
  ArtifactStore store(tmp_.path() / "run");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] { ok += store.upload("same", ws_, "build").has_value(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(store.names(), (Files{"same"}));
}

TEST_F(ArtifactsTest, NothingFoundFollowsIfNoFilesFound) {
  ArtifactStore store(tmp_.path() / "run");
  ArtifactStore::UploadOptions o;
  o.if_no_files_found = IfNoFilesFound::kError;
  auto err = store.upload("none", ws_, "dist/\n!dist/x", o);
  ASSERT_FALSE(err.has_value());
  EXPECT_EQ(
      err.error(),
      "no files were found with the provided path: dist, !dist/x; no artifact will be uploaded");

  o.if_no_files_found = IfNoFilesFound::kWarn;
  auto warn = store.upload("none", ws_, "dist/", o);
  ASSERT_TRUE(warn.has_value());
  EXPECT_FALSE(warn->uploaded);
  EXPECT_NE(warn->warning.find("no files were found"), std::string::npos);

  o.if_no_files_found = IfNoFilesFound::kIgnore;
  auto ignore = store.upload("none", ws_, "dist/", o);
  ASSERT_TRUE(ignore.has_value());
  EXPECT_FALSE(ignore->uploaded);
  EXPECT_TRUE(ignore->warning.empty());
  EXPECT_TRUE(store.names().empty());
  // Nothing was stored, so the name is still free.
  EXPECT_TRUE(store.upload("none", ws_, "README.md").has_value());
}

TEST_F(ArtifactsTest, UploadRefusesBadNamesAndPaths) {
  ArtifactStore store(tmp_.path() / "run");
  EXPECT_FALSE(store.upload("../evil", ws_, "build").has_value());
  EXPECT_FALSE(store.upload("ok", ws_, "/etc").has_value());
  EXPECT_FALSE(store.upload("ok", ws_, "../").has_value());
  EXPECT_TRUE(store.names().empty());
}

TEST_F(ArtifactsTest, DownloadOfAnUnknownNameListsTheKnownOnes) {
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("a", ws_, "README.md").has_value());
  auto r = store.download("b", tmp_.path() / "dest");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), "no artifact named 'b' in this run (uploaded: a)");
}

TEST_F(ArtifactsTest, DownloadNeverWritesThroughAPlantedSymlink) {
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("bin", ws_, "build/hello").has_value());
  fs::path dest = tmp_.path() / "dest";
  fs::path victim = tmp_.path() / "victim";
  fs::create_directories(victim);
  fs::create_directories(dest);
  // A folder link on the way, and a file link at the end.
  fs::create_symlink(victim, dest / "build");
  auto r1 = store.download("bin", dest, "build");
  ASSERT_FALSE(r1.has_value());
  EXPECT_NE(r1.error().find("refused"), std::string::npos) << r1.error();
  EXPECT_TRUE(fs::is_empty(victim));

  write_file(victim / "target", "keep");
  fs::create_symlink(victim / "target", dest / "hello");
  auto r2 = store.download("bin", dest);
  ASSERT_FALSE(r2.has_value());
  EXPECT_NE(r2.error().find("symbolic link; refused"), std::string::npos) << r2.error();
  EXPECT_EQ(read_file(victim / "target"), "keep");
  EXPECT_FALSE(store.download("bin", dest, "../x").has_value());
}

TEST_F(ArtifactsTest, AReopenedStoreKnowsEarlierUploads) {
  {
    ArtifactStore store(tmp_.path() / "run");
    ASSERT_TRUE(store.upload("bin", ws_, "build/hello").has_value());
  }
  ArtifactStore again(tmp_.path() / "run");
  EXPECT_EQ(again.names(), (Files{"bin"}));
  EXPECT_FALSE(again.upload("bin", ws_, "README.md").has_value());
  EXPECT_TRUE(again.download("bin", tmp_.path() / "dest").has_value());
}

TEST_F(ArtifactsTest, DownloadAllPutsEachArtifactInItsFolder) {
  ArtifactStore store(tmp_.path() / "run");
  ASSERT_TRUE(store.upload("bin", ws_, "build/hello").has_value());
  ASSERT_TRUE(store.upload("doc", ws_, "README.md").has_value());
  fs::path dest = tmp_.path() / "dest";
  auto r = store.download_all(dest, "artifacts");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->file_count, 2u);
  EXPECT_EQ(read_file(dest / "artifacts/bin/hello"), "ELF-hello");
  EXPECT_EQ(read_file(dest / "artifacts/doc/README.md"), "readme");
}

}  // namespace
}  // namespace sandci::agent
