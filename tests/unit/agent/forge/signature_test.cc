#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "agent/forge/codec.h"
#include "agent/forge/signing.h"
#include "agent/forge/webhook.h"
#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;
using testing::Headers;

const system_clock::time_point kNow{seconds(1714990000)};
constexpr std::string_view kSecret = "correct horse battery staple";
constexpr std::string_view kBody = R"({"ref":"refs/heads/main","after":"x"})";

Verification verify(ForgeKind forge, const Headers& headers, std::string_view body = kBody,
                    std::string_view secret = kSecret, system_clock::time_point now = kNow) {
  return verify_signature(forge, headers.lookup(), body, secret, now);
}

Headers signed_headers(ForgeKind forge, std::string_view body = kBody, bool gitlab_signed = false,
                       system_clock::time_point sent = kNow, std::string_view secret = kSecret) {
  return Headers(webhook_headers(forge, "push", "d-1", body, secret, sent, gitlab_signed));
}

void expect_reason_hides_secrets(const Verification& v, std::string_view body) {
  EXPECT_EQ(v.reason.find(kSecret), std::string::npos) << v.reason;
  EXPECT_EQ(v.reason.find(hex_encode(hmac_sha256(kSecret, body))), std::string::npos) << v.reason;
}

// --- GitHub ----------------------------------------------------------------------

TEST(GitHubSignature, MatchesGitHubsOwnSigner) {
  // Computed with @octokit/webhooks-methods 6.0.0 (GitHub's signer), installed with npm
  // into a temporary directory: sign("It's a Secret to Everybody", body).
  const std::string body = R"({"zen":"Design for failure.","hook_id":1})";
  Headers headers{{"X-Hub-Signature-256",
                   "sha256=65cf1e1aeb36f098c67ba0ea5421c7ce1f94fd30c73bb51911a847c2e3480f52"}};
  EXPECT_TRUE(verify(ForgeKind::github, headers, body, "It's a Secret to Everybody").ok());
  EXPECT_EQ(webhook_headers(ForgeKind::github, "ping", "1", body, "It's a Secret to Everybody",
                            kNow)[3]
                .second,
            "sha256=65cf1e1aeb36f098c67ba0ea5421c7ce1f94fd30c73bb51911a847c2e3480f52");
}

TEST(GitHubSignature, ValidSignatureVerifies) {
  Verification v = verify(ForgeKind::github, signed_headers(ForgeKind::github));
  EXPECT_EQ(v.outcome, SignatureOutcome::ok) << v.reason;
}

TEST(GitHubSignature, UppercaseHexIsTheSameDigest) {
  std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(verify(ForgeKind::github, Headers{{"X-Hub-Signature-256", "sha256=" + hex}}).ok());
}

TEST(GitHubSignature, WrongSecretIsAMismatch) {
  Verification v = verify(ForgeKind::github, signed_headers(ForgeKind::github), kBody, "other");
  EXPECT_EQ(v.outcome, SignatureOutcome::mismatch);
  expect_reason_hides_secrets(v, kBody);
}

TEST(GitHubSignature, BodyChangedByOneByteIsAMismatch) {
  std::string changed(kBody);
  changed[5] ^= 1;
  Verification v = verify(ForgeKind::github, signed_headers(ForgeKind::github), changed);
  EXPECT_EQ(v.outcome, SignatureOutcome::mismatch);
  // A trailing newline added by a proxy is a change too.
  EXPECT_FALSE(verify(ForgeKind::github, signed_headers(ForgeKind::github),
                      std::string(kBody) + "\n").ok());
}

TEST(GitHubSignature, MissingHeaderIsMissing) {
  Headers headers = signed_headers(ForgeKind::github);
  headers.erase("X-Hub-Signature-256");
  Verification v = verify(ForgeKind::github, headers);
  EXPECT_EQ(v.outcome, SignatureOutcome::missing);
  EXPECT_NE(v.reason.find("X-Hub-Signature-256"), std::string::npos);
}

TEST(GitHubSignature, TheOldSha1HeaderAloneIsNotEnough) {
  Headers headers = signed_headers(ForgeKind::github);
  headers.erase("X-Hub-Signature-256");
  ASSERT_TRUE(headers.lookup()("X-Hub-Signature"));
  EXPECT_EQ(verify(ForgeKind::github, headers).outcome, SignatureOutcome::missing);
}

TEST(GitHubSignature, TruncatedHexIsAMismatch) {
  const std::string full = "sha256=" + hex_encode(hmac_sha256(kSecret, kBody));
  Verification v =
      verify(ForgeKind::github, Headers{{"X-Hub-Signature-256", full.substr(0, full.size() - 2)}});
  EXPECT_EQ(v.outcome, SignatureOutcome::mismatch);
  expect_reason_hides_secrets(v, kBody);
}

TEST(GitHubSignature, WrongPrefixIsAMismatch) {
  const std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  EXPECT_EQ(verify(ForgeKind::github, Headers{{"X-Hub-Signature-256", "sha1=" + hex}}).outcome,
            SignatureOutcome::mismatch);
  EXPECT_EQ(verify(ForgeKind::github, Headers{{"X-Hub-Signature-256", hex}}).outcome,
            SignatureOutcome::mismatch);
}

TEST(GitHubSignature, NonHexDigitsAreAMismatch) {
  std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  hex[10] = 'g';
  EXPECT_EQ(verify(ForgeKind::github, Headers{{"X-Hub-Signature-256", "sha256=" + hex}}).outcome,
            SignatureOutcome::mismatch);
}

TEST(GitHubSignature, EmptySecretVerifiesNothing) {
  // Even a request correctly signed with the empty key must not pass.
  Headers headers = signed_headers(ForgeKind::github, kBody, false, kNow, "");
  EXPECT_EQ(verify(ForgeKind::github, headers, kBody, "").outcome, SignatureOutcome::mismatch);
}

// --- Gitea and Forgejo -----------------------------------------------------------

TEST(GiteaSignature, BareHexInXGiteaSignature) {
  Headers headers{{"X-Gitea-Signature", hex_encode(hmac_sha256(kSecret, kBody))}};
  EXPECT_TRUE(verify(ForgeKind::gitea, headers).ok());
  EXPECT_TRUE(verify(ForgeKind::gitea, signed_headers(ForgeKind::gitea)).ok());
}

TEST(GiteaSignature, WrongSecretChangedBodyAndTruncationFail) {
  Headers headers = signed_headers(ForgeKind::gitea);
  EXPECT_EQ(verify(ForgeKind::gitea, headers, kBody, "wrong").outcome, SignatureOutcome::mismatch);
  EXPECT_EQ(verify(ForgeKind::gitea, headers, std::string(kBody) + " ").outcome,
            SignatureOutcome::mismatch);
  const std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  EXPECT_EQ(verify(ForgeKind::gitea, Headers{{"X-Gitea-Signature", hex.substr(1)}}).outcome,
            SignatureOutcome::mismatch);
  // GitHub's prefix is not part of Gitea's header.
  EXPECT_EQ(verify(ForgeKind::gitea, Headers{{"X-Gitea-Signature", "sha256=" + hex}}).outcome,
            SignatureOutcome::mismatch);
}

TEST(GiteaSignature, MissingHeaderIsMissing) {
  EXPECT_EQ(verify(ForgeKind::gitea, Headers{{"X-Gitea-Event", "push"}}).outcome,
            SignatureOutcome::missing);
}

TEST(ForgejoSignature, OwnHeaderOrTheGiteaOne) {
  const std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  EXPECT_TRUE(verify(ForgeKind::forgejo, Headers{{"X-Forgejo-Signature", hex}}).ok());
  EXPECT_TRUE(verify(ForgeKind::forgejo, Headers{{"X-Gitea-Signature", hex}}).ok());
  EXPECT_TRUE(verify(ForgeKind::forgejo, signed_headers(ForgeKind::forgejo)).ok());
}

TEST(ForgejoSignature, ItsOwnHeaderDecidesWhenPresent) {
  // A wrong X-Forgejo-Signature is not rescued by a right X-Gitea-Signature.
  const std::string hex = hex_encode(hmac_sha256(kSecret, kBody));
  const std::string wrong = hex_encode(hmac_sha256("wrong", kBody));
  Headers headers{{"X-Forgejo-Signature", wrong}, {"X-Gitea-Signature", hex}};
  EXPECT_EQ(verify(ForgeKind::forgejo, headers).outcome, SignatureOutcome::mismatch);
  EXPECT_EQ(verify(ForgeKind::forgejo, Headers{}).outcome, SignatureOutcome::missing);
}

// --- GitLab ----------------------------------------------------------------------

TEST(GitLabToken, TheSecretItselfVerifies) {
  EXPECT_TRUE(verify(ForgeKind::gitlab, Headers{{"X-Gitlab-Token", std::string(kSecret)}}).ok());
  EXPECT_TRUE(verify(ForgeKind::gitlab, signed_headers(ForgeKind::gitlab)).ok());
}

TEST(GitLabToken, AnythingElseIsAMismatch) {
  for (std::string token : {std::string("correct horse battery"), std::string(kSecret) + "x",
                            std::string("Correct horse battery staple")}) {
    Verification v = verify(ForgeKind::gitlab, Headers{{"X-Gitlab-Token", token}});
    EXPECT_EQ(v.outcome, SignatureOutcome::mismatch) << token;
    EXPECT_EQ(v.reason.find(kSecret), std::string::npos);
  }
  EXPECT_EQ(verify(ForgeKind::gitlab, Headers{{"X-Gitlab-Event", "Push Hook"}}).outcome,
            SignatureOutcome::missing);
}

TEST(GitLabSigned, StandardWebhooksTestVector) {
  // Secret, id, timestamp and body of the Standard Webhooks specification's example; the
  // expected signature was computed independently with Python's hmac and base64 modules.
  const std::string body = R"({"test": 2432232314})";
  Headers headers{{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                  {"webhook-timestamp", "1614265330"},
                  {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
  const system_clock::time_point sent{seconds(1614265330)};
  Verification v = verify(ForgeKind::gitlab, headers, body, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                          sent + seconds(10));
  EXPECT_TRUE(v.ok()) << v.reason;
  EXPECT_EQ(gitlab_webhook_signature("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body,
                                     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(GitLabSigned, ValidSignatureVerifies) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true);
  ASSERT_FALSE(headers.lookup()("X-Gitlab-Token"));
  EXPECT_TRUE(verify(ForgeKind::gitlab, headers).ok());
}

TEST(GitLabSigned, WrongSecretAndChangedBodyAreMismatches) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true);
  EXPECT_EQ(verify(ForgeKind::gitlab, headers, kBody, "nope").outcome, SignatureOutcome::mismatch);
  std::string changed(kBody);
  changed.back() = ']';
  EXPECT_EQ(verify(ForgeKind::gitlab, headers, changed).outcome, SignatureOutcome::mismatch);
}

TEST(GitLabSigned, TheIdAndTimestampAreSignedToo) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.set("webhook-id", "d-2");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);
  headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.set("webhook-timestamp", std::to_string(1714990000 + 1));
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);
}

TEST(GitLabSigned, OldTimestampIsExpired) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true, kNow - seconds(301));
  Verification v = verify(ForgeKind::gitlab, headers);
  EXPECT_EQ(v.outcome, SignatureOutcome::expired);
  EXPECT_NE(v.reason.find("old"), std::string::npos);
  // Just inside the window is fine.
  EXPECT_TRUE(verify(ForgeKind::gitlab, signed_headers(ForgeKind::gitlab, kBody, true,
                                                       kNow - seconds(300)))
                  .ok());
}

TEST(GitLabSigned, FutureTimestampIsExpired) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true, kNow + seconds(301));
  Verification v = verify(ForgeKind::gitlab, headers);
  EXPECT_EQ(v.outcome, SignatureOutcome::expired);
  EXPECT_NE(v.reason.find("future"), std::string::npos);
}

TEST(GitLabSigned, OneValidSignatureAmongSeveralVerifies) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true);
  const std::string valid = *headers.lookup()("webhook-signature");
  const std::string old_key =
      gitlab_webhook_signature("d-1", std::to_string(1714990000), kBody, "rotated-out");
  headers.set("webhook-signature", "v1a,bm90IGEgc3ltbWV0cmljIG9uZQ== " + old_key + " " + valid);
  EXPECT_TRUE(verify(ForgeKind::gitlab, headers).ok());
  headers.set("webhook-signature", old_key + " v1,AAAA " + old_key);
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);
}

TEST(GitLabSigned, MalformedOrIncompleteHeaders) {
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.erase("webhook-timestamp");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::missing);

  headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.set("webhook-timestamp", "yesterday");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);

  headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.set("webhook-signature", "v2,abc");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);

  headers = signed_headers(ForgeKind::gitlab, kBody, true);
  headers.set("webhook-signature", "v1,!!!not-base64!!!");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);
}

TEST(GitLabSigned, AWhsecSecretKeysWithItsDecodedBytes) {
  const std::string key = "sixteen byte key";
  const std::string whsec = "whsec_" + base64_encode(key);
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true, kNow, whsec);
  EXPECT_TRUE(verify(ForgeKind::gitlab, headers, kBody, whsec).ok());
  // The same header verifies with the raw key, proving the decoded bytes were the key.
  EXPECT_TRUE(verify(ForgeKind::gitlab, headers, kBody, key).ok());
}

TEST(GitLabSigned, ASecretTokenAlongsideStillAuthenticates) {
  // A hook with both a secret token and a signing token; the agent knows the token.
  Headers headers = signed_headers(ForgeKind::gitlab, kBody, true, kNow, "signing-token");
  headers.set("X-Gitlab-Token", std::string(kSecret));
  EXPECT_TRUE(verify(ForgeKind::gitlab, headers).ok());
  headers.set("X-Gitlab-Token", "wrong");
  EXPECT_EQ(verify(ForgeKind::gitlab, headers).outcome, SignatureOutcome::mismatch);
}

TEST(SigningHeaders, EachForgeSendsItsOwnEventAndDeliveryHeaders) {
  Headers gitea = signed_headers(ForgeKind::gitea);
  EXPECT_EQ(gitea.lookup()("X-Gitea-Event"), "push");
  EXPECT_EQ(gitea.lookup()("X-Gitea-Delivery"), "d-1");
  EXPECT_EQ(gitea.lookup()("X-GitHub-Event"), "push");
  EXPECT_FALSE(gitea.lookup()("X-Forgejo-Event"));
  Headers forgejo = signed_headers(ForgeKind::forgejo);
  EXPECT_EQ(forgejo.lookup()("X-Forgejo-Delivery"), "d-1");
  EXPECT_EQ(detect_forge(forgejo.lookup()), ForgeKind::forgejo);
  EXPECT_EQ(detect_forge(gitea.lookup()), ForgeKind::gitea);
  Headers gitlab = signed_headers(ForgeKind::gitlab, kBody, true);
  EXPECT_EQ(gitlab.lookup()("webhook-timestamp"), "1714990000");
  EXPECT_EQ(gitlab.lookup()("webhook-id"), "d-1");
  EXPECT_EQ(gitlab.lookup()("X-Gitlab-Event-UUID"), "d-1");
}

}  // namespace
}  // namespace sandci::agent::forge
