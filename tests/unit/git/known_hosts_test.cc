#include "git/known_hosts.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>


#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sandci::git {
namespace {

// Real ed25519 public keys (ssh-keygen output), as base64 of the SSH wire blob.
constexpr const char* kKeyA = "AAAAC3NzaC1lZDI1NTE5AAAAIGn4YVxnTwJtU0JX9CZtM2Fq9kD1r8VyYtq2w0pSmHnM";
constexpr const char* kKeyB = "AAAAC3NzaC1lZDI1NTE5AAAAIBqk2HqDdq1m2t8hZr3nF3pYH0mQm0b2c1pY7VbX5sW1";

std::string blob(const char* b64) { return base64_decode(b64); }

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63]} + "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63],
                       kAlphabet[(n >> 6) & 63]} + "=";
  }
  return out;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// A hashed known_hosts host field as `ssh-keygen -H` writes it, for `name` with `salt`.
std::string hashed_field(std::string_view salt, std::string_view name) {
  return "|1|" + base64_encode(salt) + "|" + base64_encode(hash_host_name(salt, name));
}

const std::string kSalt(20, '\x5a');
const std::string kOtherSalt = "0123456789abcdefghij";

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

TEST(HashHostName, IsHmacSha1KeyedWithTheSalt) {
  // RFC 2202, HMAC-SHA1 test case 2.
  EXPECT_EQ(hex(hash_host_name("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(hash_host_name(kSalt, "h").size(), 20u);
}

TEST(KnownHosts, HashedHostOnDefaultPort) {
  auto hosts = KnownHosts::parse(hashed_field(kSalt, "git.example.com") + " ssh-ed25519 " +
                                 kKeyA + "\n");
  EXPECT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts.check("git.example.com", 0, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("Git.Example.COM", 22, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("git.example.com", 0, blob(kKeyB)), HostKeyMatch::kMismatch);
  EXPECT_EQ(hosts.check("git.example.org", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
  EXPECT_EQ(hosts.check("git.example.com", 2222, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, HashedHostWithPortHashesTheBracketForm) {
  auto hosts = KnownHosts::parse(hashed_field(kOtherSalt, "[127.0.0.1]:2222") + " ssh-ed25519 " +
                                 kKeyA + "\n" + hashed_field(kSalt, "127.0.0.1") +
                                 " ssh-ed25519 " + kKeyB + "\n");
  EXPECT_EQ(hosts.check("127.0.0.1", 2222, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 2222, blob(kKeyB)), HostKeyMatch::kMismatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 22, blob(kKeyB)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 2200, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, HashedRevokedKeyIsRefused) {
  auto hosts = KnownHosts::parse(hashed_field(kSalt, "h") + " ssh-ed25519 " + kKeyA +
                                 "\n@revoked " + hashed_field(kOtherSalt, "h") +
                                 " ssh-ed25519 " + kKeyA + "\n");
  EXPECT_EQ(hosts.check("h", 0, blob(kKeyA)), HostKeyMatch::kRevoked);
}

TEST(KnownHosts, HashWithTheWrongSaltDoesNotMatch) {
  // The salt of one line with the hash of another: the same host name, yet no match.
  const std::string hash = base64_encode(hash_host_name(kOtherSalt, "h"));
  auto hosts = KnownHosts::parse("|1|" + base64_encode(kSalt) + "|" + hash + " ssh-ed25519 " +
                                 kKeyA + "\n");
  EXPECT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts.check("h", 0, blob(kKeyA)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, LinesHashedBySshKeygenMatch) {
  if (std::system("command -v ssh-keygen >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "ssh-keygen is not installed";
  const sandci::testing::TempDir dir("sandci-known-hosts-");
  const auto file = dir / "known_hosts";
  std::ofstream(file) << "git.example.com ssh-ed25519 " << kKeyA << "\n"
                      << "[127.0.0.1]:2222 ssh-ed25519 " << kKeyB << "\n";
  const std::string command = "ssh-keygen -H -f '" + file.string() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);

  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  ASSERT_EQ(text.str().find("example"), std::string::npos) << text.str();
  ASSERT_TRUE(text.str().starts_with("|1|")) << text.str();
  auto hosts = KnownHosts::load(file);
  EXPECT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts.check("git.example.com", 22, blob(kKeyA)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("git.example.com", 22, blob(kKeyB)), HostKeyMatch::kMismatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 2222, blob(kKeyB)), HostKeyMatch::kMatch);
  EXPECT_EQ(hosts.check("127.0.0.1", 22, blob(kKeyB)), HostKeyMatch::kUnknownHost);
}

TEST(KnownHosts, MalformedHashedAndCertAuthorityLinesAreSkippedNotTrusted) {
  // A hashed field needs a 20-byte salt and a 20-byte hash ("salt" and "hash" here).
  auto hosts = KnownHosts::parse(std::string("|1|c2FsdA==|aGFzaA== ssh-ed25519 ") + kKeyA + "\n" +
                                 "|2|" + base64_encode(kSalt) + "|" +
                                 base64_encode(hash_host_name(kSalt, "h")) + " ssh-ed25519 " +
                                 kKeyA + "\n" + "|1|" + base64_encode(kSalt) + " ssh-ed25519 " +
                                 kKeyA + "\n" +
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
