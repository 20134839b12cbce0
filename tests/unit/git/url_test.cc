#include "git/url.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace sandci::git {
namespace {

TEST(ParseRepoUrl, HttpsWithTokenAndPort) {
  auto u = parse_repo_url("https://user:s3cr3t@Example.com:8443/owner/repo.git");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->user, "user");
  EXPECT_EQ(u->password, "s3cr3t");
  EXPECT_EQ(u->host, "Example.com");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path, "/owner/repo.git");
}

TEST(ParseRepoUrl, ScpLikeIsSsh) {
  auto u = parse_repo_url("git@github.com:owner/repo.git");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->scp_like);
  EXPECT_EQ(u->scheme, "ssh");
  EXPECT_EQ(u->user, "git");
  EXPECT_EQ(u->host, "github.com");
  EXPECT_EQ(u->path, "owner/repo.git");
}

TEST(ParseRepoUrl, Ipv6AndBadPort) {
  auto u = parse_repo_url("ssh://git@[::1]:2222/srv/repo");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 2222);
  EXPECT_FALSE(parse_repo_url("https://host:99999/x"));
  EXPECT_FALSE(parse_repo_url("https://host:abc/x"));
  EXPECT_FALSE(parse_repo_url(""));
}

TEST(RedactUrl, RemovesHttpUserAndPassword) {
  EXPECT_EQ(redact_url("https://user:s3cr3t@example.com/o/r.git"), "https://example.com/o/r.git");
  EXPECT_EQ(redact_url("https://ghp_TOKEN123@example.com/o/r.git"), "https://example.com/o/r.git");
  // A password with an unencoded '@' must not leak its tail.
  EXPECT_EQ(redact_url("https://u:p@ss@example.com/r"), "https://example.com/r");
}

TEST(RedactUrl, KeepsSshUserDropsSshPassword) {
  EXPECT_EQ(redact_url("ssh://git:pw@example.com:2222/r.git"), "ssh://git@example.com:2222/r.git");
  EXPECT_EQ(redact_url("git@example.com:o/r.git"), "git@example.com:o/r.git");
}

TEST(RedactUrl, DropsQueryAndFragment) {
  EXPECT_EQ(redact_url("https://example.com/r.git?private_token=abc#x"), "https://example.com/r.git");
}

TEST(RedactUrl, LocalPathsUnchangedAndGarbageHidden) {
  EXPECT_EQ(redact_url("/srv/git/repo.git"), "/srv/git/repo.git");
  EXPECT_EQ(redact_url("file:///srv/git/repo.git"), "file:///srv/git/repo.git");
  EXPECT_EQ(redact_url("https://user:pw@host:bad/x"), "<invalid url>");
}

TEST(MirrorDirName, ReadableSlugPlusHash) {
  std::string name = mirror_dir_name("https://Example.com/Owner/Repo.git");
  EXPECT_TRUE(name.starts_with("example.com-owner-repo-")) << name;
  EXPECT_EQ(name.size(), std::string("example.com-owner-repo-").size() + 12);
}

TEST(MirrorDirName, CredentialsDoNotChangeIt) {
  EXPECT_EQ(mirror_dir_name("https://a:tok1@example.com/o/r.git"),
            mirror_dir_name("https://example.com/o/r.git"));
  EXPECT_EQ(mirror_dir_name("https://b:tok2@example.com/o/r.git"),
            mirror_dir_name("https://example.com/o/r.git"));
}

TEST(MirrorDirName, NeverContainsSecretsOrUnsafeCharacters) {
  std::string name = mirror_dir_name("https://user:hunter2@example.com/../../etc/passwd?x=y");
  EXPECT_EQ(name.find("hunter2"), std::string::npos);
  EXPECT_EQ(name.find('/'), std::string::npos);
  EXPECT_NE(name.front(), '.');
  for (char c : name) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')
        << name;
  }
}

TEST(MirrorDirName, DistinctUrlsWithTheSameSlugDoNotCollide) {
  // Same slug after character folding, different repositories.
  std::vector<std::string> urls = {"https://example.com/o/r.git", "https://example.com/o/r",
                                   "https://example.com/o_r", "https://example.com/O/R",
                                   "http://example.com/o/r.git", "ssh://example.com/o/r.git",
                                   "https://example.com:8443/o/r.git"};
  std::set<std::string> names;
  for (const auto& u : urls) names.insert(mirror_dir_name(u));
  EXPECT_EQ(names.size(), urls.size());
}

TEST(MirrorDirName, LongPathsAreCappedAndEmptyBecomesRepo) {
  std::string long_url = "https://example.com/" + std::string(300, 'a');
  EXPECT_LE(mirror_dir_name(long_url).size(), 48u + 13u);
  EXPECT_TRUE(mirror_dir_name("/").starts_with("repo-"));
}

TEST(RedactSecrets, ReplacesEveryOccurrence) {
  std::vector<std::string> secrets = {"tok", ""};
  EXPECT_EQ(redact_secrets("a tok b tok", secrets), "a *** b ***");
  EXPECT_EQ(redact_secrets("nothing", secrets), "nothing");
}

TEST(ResolveSubmoduleUrl, RelativeToParent) {
  EXPECT_EQ(resolve_submodule_url("https://h/o/r.git", "../lib.git"), "https://h/o/lib.git");
  EXPECT_EQ(resolve_submodule_url("https://h/o/r.git/", "./sub"), "https://h/o/r.git/sub");
  EXPECT_EQ(resolve_submodule_url("git@h:o/r.git", "../lib.git"), "git@h:o/lib.git");
  EXPECT_EQ(resolve_submodule_url("git@h:r.git", "../lib.git"), "git@h:lib.git");
  EXPECT_EQ(resolve_submodule_url("https://h/o/r", "https://other/x.git"), "https://other/x.git");
}

TEST(SameServer, SchemeHostAndPortMustAllMatch) {
  EXPECT_TRUE(same_server("https://h.example/o/a.git", "https://H.example/x/b.git"));
  EXPECT_TRUE(same_server("https://u:tok@h.example/a", "https://h.example/b"));
  EXPECT_FALSE(same_server("https://h.example/a", "https://evil.example/a"));
  EXPECT_FALSE(same_server("https://h.example/a", "http://h.example/a"));
  EXPECT_FALSE(same_server("https://h.example/a", "https://h.example:8443/a"));
  EXPECT_TRUE(same_server("git@h.example:o/a.git", "ssh://git@h.example/o/b.git"));
  EXPECT_FALSE(same_server("/srv/a", "/srv/b"));
}

}  // namespace
}  // namespace sandci::git
