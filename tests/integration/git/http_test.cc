// Smart HTTP through lighttpd + git http-backend on 127.0.0.1: token credentials,
// rejected credentials (one try only), missing credentials, and a server that
// accepts connections but never answers (timeouts).
#include <gtest/gtest.h>

#include "git/mirror_cache.h"
#include "git_test_support.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using testing::git;

constexpr const char* kUser = "ci-bot";
constexpr const char* kToken = "tok-5f0c1b9e7d";

class HttpTest : public ::testing::Test {
 protected:
  fs::path srv() const { return root_.path() / "srv"; }

  testing::TempDir root_;
  std::string sha_;  // before repo_, whose initializer sets it
  std::unique_ptr<testing::RepoOnServer> repo_ = [this] {
    fs::create_directories(srv());
    auto repo = std::make_unique<testing::RepoOnServer>(srv(), "app.git");
    sha_ = repo->commit_one("first");
    repo->push("HEAD:refs/heads/main");
    return repo;
  }();
  testing::HttpGitServer server_{srv(), kUser, kToken};
  MirrorCache cache_{root_.path() / "state"};
};

TEST_F(HttpTest, PublicRepositoryNeedsNoCredentials) {
  auto result = cache_.fetch(server_.url("app.git"));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->credential_tries, 0);
  auto co = cache_.checkout(server_.url("app.git"), sha_, root_.path() / "co");
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(git(root_.path() / "co", {"rev-parse", "HEAD"}), sha_);
}

TEST_F(HttpTest, TokenIsAcceptedInOneTry) {
  FetchOptions options;
  options.credentials.https = HttpsToken{kUser, kToken};
  auto result = cache_.fetch(server_.private_url("app.git"), options);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->credential_tries, 1);
  EXPECT_EQ(git(result->mirror, {"rev-parse", "refs/heads/main"}), sha_);
  // The token is nowhere in the mirror's config.
  EXPECT_EQ(git(result->mirror, {"config", "remote.origin.url"}).find(kToken), std::string::npos);
}

TEST_F(HttpTest, TokenInTheUrlIsUsedAndNeverStored) {
  std::string url = server_.private_url("app.git");
  url.insert(url.find("://") + 3, std::string(kUser) + ":" + kToken + "@");
  auto result = cache_.fetch(url);
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result->mirror, cache_.mirror_path(server_.private_url("app.git")));
  EXPECT_EQ(result->mirror.string().find(kToken), std::string::npos);
  EXPECT_EQ(git(result->mirror, {"config", "remote.origin.url"}), server_.private_url("app.git"));
}

TEST_F(HttpTest, WrongTokenFailsAfterOneTryWithoutLeakingIt) {
  FetchOptions options;
  options.credentials.https = HttpsToken{kUser, "wrong-token-31337"};
  auto result = cache_.fetch(server_.private_url("app.git"), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kAuthFailed) << result.error().to_string();
  EXPECT_EQ(result.error().to_string().find("wrong-token-31337"), std::string::npos);
  EXPECT_EQ(result.error().url, server_.private_url("app.git"));
  EXPECT_FALSE(fs::exists(cache_.mirror_path(server_.private_url("app.git"))));
  // libgit2 would retry the same secret; the server saw it once: one anonymous probe,
  // answered 401, then one request carrying the token, answered 401, and no more.
  std::string log = server_.access_log();
  std::size_t requests = 0;
  for (auto pos = log.find("\" 401 "); pos != std::string::npos; pos = log.find("\" 401 ", pos + 1)) {
    ++requests;
  }
  EXPECT_EQ(requests, 2u) << log;
  EXPECT_EQ(log.find("\" 200 "), std::string::npos) << log;
}

TEST_F(HttpTest, MissingCredentialsIsAuthFailed) {
  auto result = cache_.fetch(server_.private_url("app.git"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kAuthFailed) << result.error().to_string();
}

TEST_F(HttpTest, SubmoduleOnAnotherServerGetsNoCredentialsUnlessGiven) {
  testing::RepoOnServer lib(srv(), "lib.git");
  std::string lib_sha = lib.commit_one("lib");
  lib.push("HEAD:refs/heads/main");
  testing::RepoOnServer app(srv(), "sapp.git");
  // "localhost" is another server name than the parent's 127.0.0.1 (same process).
  std::string lib_url = "http://localhost:" + std::to_string(server_.port()) + "/private/lib.git";
  app.commit({{".gitmodules", "[submodule \"lib\"]\n\tpath = lib\n\turl = " + lib_url + "\n"}},
             "app");
  git(app.work(), {"update-index", "--add", "--cacheinfo", "160000," + lib_sha + ",lib"});
  git(app.work(), {"commit", "-q", "-m", "add lib"});
  std::string app_sha = git(app.work(), {"rev-parse", "HEAD"});
  app.push("HEAD:refs/heads/main");

  CheckoutOptions options;
  options.submodules = true;
  options.fetch.credentials.https = HttpsToken{kUser, kToken};
  auto withheld = cache_.checkout(server_.private_url("sapp.git"), app_sha, root_.path() / "a", options);
  ASSERT_FALSE(withheld);
  EXPECT_EQ(withheld.error().kind, ErrorKind::kAuthFailed) << withheld.error().to_string();
  EXPECT_NE(withheld.error().message.find("submodule lib"), std::string::npos);
  EXPECT_FALSE(fs::exists(root_.path() / "a")) << "a failed checkout must not stay half-written";

  int asked = 0;
  options.submodule_credentials = [&](std::string_view url) {
    ++asked;
    EXPECT_EQ(url, lib_url);
    Credentials c;
    c.https = HttpsToken{kUser, kToken};
    return c;
  };
  auto given = cache_.checkout(server_.private_url("sapp.git"), app_sha, root_.path() / "b", options);
  ASSERT_TRUE(given) << given.error().to_string();
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(git(root_.path() / "b" / "lib", {"rev-parse", "HEAD"}), lib_sha);
}

TEST(SilentServerTest, HttpFetchTimesOutWhenTheServerNeverAnswers) {
  testing::TempDir root;
  testing::SilentServer silent;
  MirrorCache cache(root.path() / "state");
  FetchOptions options;
  options.idle_timeout = std::chrono::milliseconds(500);
  std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/repo.git";
  auto result = cache.fetch(url, options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kTimeout) << result.error().to_string();
}

TEST(SilentServerTest, GitProtocolFetchStopsAtTheOverallDeadline) {
  testing::TempDir root;
  testing::SilentServer silent;
  MirrorCache cache(root.path() / "state");
  FetchOptions options;
  options.timeout = std::chrono::milliseconds(700);  // shorter than the idle timeout
  std::string url = "git://127.0.0.1:" + std::to_string(silent.port()) + "/repo.git";
  auto result = cache.fetch(url, options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kTimeout) << result.error().to_string();
}

}  // namespace
}  // namespace sandci::git
