// SSH with a private key and a per-repository known_hosts file, against OpenSSH's
// sshd started on 127.0.0.1 with its own host key.
#include <gtest/gtest.h>

#include <fstream>

#include "git/mirror_cache.h"
#include "git_test_support.h"

namespace sandci::git {
namespace {

namespace fs = std::filesystem;
using testing::git;

class SshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::SshServer::available()) GTEST_SKIP() << "openssh-server is not installed";
    fs::create_directories(root_.path() / "srv");
    repo_ = std::make_unique<testing::RepoOnServer>(root_.path() / "srv", "app.git");
    sha_ = repo_->commit_one("over ssh");
    repo_->push("HEAD:refs/heads/main");
    server_ = std::make_unique<testing::SshServer>();
    url_ = server_->url(repo_->bare());
  }

  FetchOptions with_key(const fs::path& key, const fs::path& known_hosts) {
    FetchOptions options;
    options.credentials.ssh = SshKey{server_->user(), key, {}, {}};
    options.credentials.known_hosts = known_hosts;
    options.timeout = std::chrono::seconds(30);
    return options;
  }

  testing::TempDir root_;
  std::unique_ptr<testing::RepoOnServer> repo_;
  std::unique_ptr<testing::SshServer> server_;
  std::string sha_, url_;
  MirrorCache cache_{root_.path() / "state"};
};

TEST_F(SshTest, KeyAndKnownHostsFetchAndCheckout) {
  auto result = cache_.fetch(url_, with_key(server_->client_key(), server_->known_hosts()));
  ASSERT_TRUE(result) << result.error().to_string() << "\n" << server_->log();
  EXPECT_EQ(result->credential_tries, 1);
  CheckoutOptions options;
  options.fetch = with_key(server_->client_key(), server_->known_hosts());
  auto co = cache_.checkout(url_, sha_, root_.path() / "co", options);
  ASSERT_TRUE(co) << co.error().to_string();
  EXPECT_EQ(git(root_.path() / "co", {"log", "-1", "--format=%s"}), "over ssh");
}

TEST_F(SshTest, HostMissingFromKnownHostsIsRefused) {
  fs::path empty = root_.path() / "empty_known_hosts";
  std::ofstream(empty) << "";
  auto result = cache_.fetch(url_, with_key(server_->client_key(), empty));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kUnknownHostKey) << result.error().to_string();
  EXPECT_NE(result.error().message.find("not in known_hosts"), std::string::npos);
  EXPECT_EQ(server_->log().find("Accepted publickey"), std::string::npos)
      << "the key must not be offered to an unverified host";
}

TEST_F(SshTest, DifferentHostKeyIsRefused) {
  auto result = cache_.fetch(url_, with_key(server_->client_key(), server_->wrong_known_hosts()));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kUnknownHostKey) << result.error().to_string();
  EXPECT_NE(result.error().message.find("differs"), std::string::npos);
}

TEST_F(SshTest, NoKnownHostsFileTrustsNoHost) {
  auto result = cache_.fetch(url_, with_key(server_->client_key(), {}));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kUnknownHostKey) << result.error().to_string();
}

TEST_F(SshTest, UnauthorizedKeyIsAuthFailedAfterOneTry) {
  auto result = cache_.fetch(url_, with_key(server_->other_key(), server_->known_hosts()));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kAuthFailed) << result.error().to_string();
  std::string log = server_->log();
  std::size_t offers = 0;
  for (auto pos = log.find("Failed publickey"); pos != std::string::npos;
       pos = log.find("Failed publickey", pos + 1)) {
    ++offers;
  }
  EXPECT_EQ(offers, 1u) << log;
}

}  // namespace
}  // namespace sandci::git
