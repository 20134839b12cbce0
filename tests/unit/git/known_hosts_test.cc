#include "git/known_hosts.h"

#include <gtest/gtest.h>

namespace sandci::git {
namespace {

// Real ed25519 public keys (ssh-keygen output), as base64 of the SSH wire blob.
constexpr const char* kKeyA = "AAAAC3NzaC1lZDI1NTE5AAAAIGn4YVxnTwJtU0JX9CZtM2Fq9kD1r8VyYtq2w0pSmHnM";
constexpr const char* kKeyB = "AAAAC3NzaC1lZDI1NTE5AAAAIBqk2HqDdq1m2t8hZr3nF3pYH0mQm0b2c1pY7VbX5sW1";

std::string blob(const char* b64) { return base64_decode(b64); }

TEST(Base64, DecodesAndRejectsGarbage) {
  EXPECT_EQ(base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(base64_decode("aGVsbG8"), "hello");
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_EQ(base64_decode("a$b="), "");
  EXPECT_EQ(blob(kKeyA).substr(4, 11), "ssh-ed25519");
}

TEST(GlobMatch, StarAndQuestionMark) {
  EXPECT_TRUE(glob_match("*.example.com", "git.example.com"));
  EXPECT_FALSE(glob_match("*.example.com", "example.com"));
  EXPECT_TRUE(glob_match("host?", "host1"));
  EXPECT_FALSE(glob_match("host?", "host12"));
  EXPECT_TRUE(glob_match("*", "anything"));
}

TEST(KnownHosts, MatchesPlainHostOnDefaultPort) {
  auto hosts = KnownHosts::parse(std::string("# comment\n\ngit.example.com ssh-ed25519 ") + kKeyA +
                                 " comment\n");
  EXPECT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts.check("git.example.com", 0, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("GIT.example.com", 22, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("git.example.com", 0, blob(kKeyB)), HostKeyMatch::kMismatch);
  EXPECT_EQ(hosts.check("other.example.com", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, NonDefaultPortNeedsBracketForm) {
  auto hosts = KnownHosts::parse(std::string("[127.0.0.1]:2222 ssh-ed25519 ") + kKeyA + "\n" +
                                 "127.0.0.1 ssh-ed25519 " + kKeyB + "\n");
  EXPECT_EQ(hosts.check("127.0.0.1", 2222, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 2222, blob(kKeyB)), HostKeyMatch::kMismatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 22, blob(kKeyB)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 2200, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, CommaListsWildcardsAndNegation) {
  auto hosts = KnownHosts::parse(std::string("a.example.com,*.corp.example,!bad.corp.example ssh-ed25519 ") +
                                 kKeyA + "\n");
  EXPECT_EQ(hosts.check("a.example.com", 0, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("x.corp.example", 0, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("bad.corp.example", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, RevokedKeyIsRefusedEvenIfAlsoListed) {
  auto hosts = KnownHosts::parse(std::string("h ssh-ed25519 ") + kKeyA + "\n@revoked * ssh-ed25519 " +
                                 kKeyA + "\n");
  EXPECT_EQ(hosts.check("h", 0, blob(kKeyA)), HostKeyMatch::kRevoked);
}

TEST(KnownHosts, HashedAndCertAuthorityLinesAreSkippedNotTrusted) {
  auto hosts = KnownHosts::parse(std::string("|1|c2FsdA==|aGFzaA== ssh-ed25519 ") + kKeyA + "\n" +
                                 "@cert-authority * ssh-ed25519 " + kKeyA + "\n" +
                                 "broken-line-without-key\n" + "h ssh-ed25519 !!notbase64!!\n");
  EXPECT_EQ(hosts.size(), 0u);
  EXPECT_EQ(hosts.check("h", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, MissingFileTrustsNothing) {
  auto hosts = KnownHosts::load("/nonexistent/known_hosts");
  EXPECT_EQ(hosts.check("h", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

}  // namespace
}  // namespace sandci::git
