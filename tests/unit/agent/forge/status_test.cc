#include "agent/forge/status.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "forge_test_support.h"

namespace sandci::agent::forge {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;
using testing::Headers;
using Outcome = StatusAnswer::Outcome;

const system_clock::time_point kNow{seconds(1714990000)};  // Mon, 06 May 2024 10:06:40 GMT
constexpr std::string_view kSha = "4e8b2c6a0d3f5e7b9c1a2d4f6e8b0c2a4d6f8e13";

CommitStatus status(CommitState state = CommitState::success) {
  CommitStatus s;
  s.sha = kSha;
  s.context = "sandci / build (push)";
  s.description = "Successful in 1m2s";
  s.target_url = "https://ci.example.org/runs/17";
  s.ref = "main";
  s.state = state;
  return s;
}

std::optional<std::string> header(const HttpCall& call, std::string_view name) {
  for (const auto& [key, value] : call.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

TEST(StatusRequest, GitHub) {
  HttpCall call = build_status_request({ForgeKind::github, "https://api.github.com", "acme/widgets", {}},
                                       status(), "ghp_token");
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.url, std::string("https://api.github.com/repos/acme/widgets/statuses/") +
                          std::string(kSha));
  EXPECT_EQ(header(call, "Authorization"), "Bearer ghp_token");
  EXPECT_EQ(header(call, "Accept"), "application/vnd.github+json");
  EXPECT_EQ(header(call, "User-Agent"), "sandci");
  EXPECT_EQ(header(call, "Content-Type"), "application/json");
  EXPECT_EQ(header(call, "PRIVATE-TOKEN"), std::nullopt);
  EXPECT_EQ(json::parse(call.body), (json{{"state", "success"},
                                          {"context", "sandci / build (push)"},
                                          {"description", "Successful in 1m2s"},
                                          {"target_url", "https://ci.example.org/runs/17"}}));
}

TEST(StatusRequest, GitHubEnterpriseApiRootWithATrailingSlash) {
  HttpCall call = build_status_request(
      {ForgeKind::github, "https://ghe.example/api/v3/", "acme/widgets", {}}, status(), "t");
  EXPECT_EQ(call.url, std::string("https://ghe.example/api/v3/repos/acme/widgets/statuses/") +
                          std::string(kSha));
}

TEST(StatusRequest, GiteaAndForgejo) {
  for (ForgeKind forge : {ForgeKind::gitea, ForgeKind::forgejo}) {
    HttpCall call = build_status_request(
        {forge, "https://gitea.example/api/v1", "acme/widgets", {}}, status(CommitState::running),
        "tok");
    EXPECT_EQ(call.url, std::string("https://gitea.example/api/v1/repos/acme/widgets/statuses/") +
                            std::string(kSha));
    EXPECT_EQ(header(call, "Authorization"), "token tok");
    const json body = json::parse(call.body);
    EXPECT_EQ(body["state"], "pending");
    EXPECT_EQ(body["context"], "sandci / build (push)");
    EXPECT_FALSE(body.contains("ref"));
  }
}

// The agent knows refs in full; GitLab names a branch or a tag by its short name.
TEST(StatusRequest, GitLabRefIsTheBranchOrTagName) {
  CommitStatus branch = status();
  branch.ref = "refs/heads/feature/x";
  EXPECT_EQ(json::parse(build_status_request({ForgeKind::gitlab, "https://g/api/v4", "a/b", 1}, branch, "t").body)["ref"],
            "feature/x");
  CommitStatus tag = status();
  tag.ref = "refs/tags/v1.2";
  EXPECT_EQ(json::parse(build_status_request({ForgeKind::gitlab, "https://g/api/v4", "a/b", 1}, tag, "t").body)["ref"],
            "v1.2");
}

TEST(StatusRequest, GitLabByIdAndByPath) {
  HttpCall by_id = build_status_request(
      {ForgeKind::gitlab, "https://gitlab.example/api/v4", "factory/line/conveyor", 321},
      status(CommitState::failure), "glpat");
  EXPECT_EQ(by_id.url, std::string("https://gitlab.example/api/v4/projects/321/statuses/") +
                           std::string(kSha));
  EXPECT_EQ(header(by_id, "PRIVATE-TOKEN"), "glpat");
  EXPECT_EQ(header(by_id, "Authorization"), std::nullopt);
  EXPECT_EQ(json::parse(by_id.body), (json{{"state", "failed"},
                                           {"name", "sandci / build (push)"},
                                           {"ref", "main"},
                                           {"description", "Successful in 1m2s"},
                                           {"target_url", "https://ci.example.org/runs/17"}}));
  HttpCall by_path = build_status_request(
      {ForgeKind::gitlab, "https://gitlab.example/api/v4", "factory/line/conveyor", {}},
      status(), "glpat");
  EXPECT_EQ(by_path.url,
            std::string("https://gitlab.example/api/v4/projects/factory%2Fline%2Fconveyor/statuses/") +
                std::string(kSha));
}

TEST(StatusRequest, EmptyFieldsAndTokenAreLeftOut) {
  CommitStatus s = status(CommitState::pending);
  s.description.clear();
  s.target_url.clear();
  s.ref.clear();
  HttpCall call = build_status_request(
      {ForgeKind::gitlab, "https://gitlab.example/api/v4", "g/p", 5}, s, "");
  EXPECT_EQ(header(call, "PRIVATE-TOKEN"), std::nullopt);
  EXPECT_EQ(json::parse(call.body), (json{{"state", "pending"}, {"name", "sandci / build (push)"}}));
}

TEST(StatusRequest, StrangeRepositoryNamesAreEncoded) {
  HttpCall call = build_status_request(
      {ForgeKind::gitea, "https://gitea.example/api/v1", "acme/we?ird#name", {}}, status(), "t");
  EXPECT_EQ(call.url, std::string("https://gitea.example/api/v1/repos/acme/we%3Fird%23name/statuses/") +
                          std::string(kSha));
}

TEST(StatusRequest, DescriptionsAreCutAtACharacterBoundary) {
  CommitStatus s = status();
  s.description = std::string(139, 'a') + "\u00e9\u00e9\u00e9";  // 142 characters, 145 bytes
  const json github = json::parse(build_status_request(
      {ForgeKind::github, "https://api.github.com", "a/b", {}}, s, "t").body);
  EXPECT_EQ(github["description"], std::string(139, 'a') + "\u2026");

  s.description = std::string(138, 'a') + "\u00e9\u00e9";  // exactly 140: kept
  EXPECT_EQ(json::parse(build_status_request({ForgeKind::github, "https://api.github.com", "a/b", {}},
                                             s, "t")
                            .body)["description"],
            s.description);

  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "\u00fc";  // 2 bytes each
  s.description = long_text;
  const std::string gitlab = json::parse(build_status_request(
      {ForgeKind::gitlab, "https://gitlab.example/api/v4", "a/b", 1}, s, "t").body)["description"];
  EXPECT_EQ(gitlab.size(), 254u * 2 + 3);  // 254 two-byte characters and the ellipsis
  EXPECT_TRUE(gitlab.ends_with("\u00fc\u2026"));
}

TEST(StatusRequest, InvalidUtf8DoesNotThrow) {
  CommitStatus s = status();
  s.description = "bad \xff byte";
  HttpCall call;
  ASSERT_NO_THROW(call = build_status_request(
                      {ForgeKind::github, "https://api.github.com", "a/b", {}}, s, "t"));
  EXPECT_EQ(json::parse(call.body)["description"], "bad \xef\xbf\xbd byte");
}

TEST(ForgeState, PerForge) {
  using S = CommitState;
  for (ForgeKind forge : {ForgeKind::github, ForgeKind::gitea, ForgeKind::forgejo}) {
    EXPECT_EQ(forge_state(forge, S::pending), "pending");
    EXPECT_EQ(forge_state(forge, S::running), "pending");
    EXPECT_EQ(forge_state(forge, S::success), "success");
    EXPECT_EQ(forge_state(forge, S::failure), "failure");
    EXPECT_EQ(forge_state(forge, S::error), "error");
    EXPECT_EQ(forge_state(forge, S::cancelled), "error");
  }
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::pending), "pending");
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::running), "running");
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::success), "success");
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::failure), "failed");
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::error), "failed");
  EXPECT_EQ(forge_state(ForgeKind::gitlab, S::cancelled), "canceled");
}

// --- answers -----------------------------------------------------------------------

StatusAnswer classify(ForgeKind forge, int code, const Headers& headers = {},
                      std::string_view body = "") {
  return classify_status_answer(forge, code, headers.lookup(), body, kNow);
}

TEST(StatusAnswer, SuccessIsDelivered) {
  EXPECT_EQ(classify(ForgeKind::github, 201, {}, R"({"id":1,"state":"success"})").outcome,
            Outcome::delivered);
  EXPECT_EQ(classify(ForgeKind::gitlab, 200).outcome, Outcome::delivered);
}

TEST(StatusAnswer, GitLabRepeatedStateIsDelivered) {
  StatusAnswer a = classify(
      ForgeKind::gitlab, 400, {},
      R"json({"message":"Cannot transition status via :enqueue from :pending (Reasons(s): Status cannot transition via \"enqueue\")"})json");
  EXPECT_EQ(a.outcome, Outcome::delivered);
  // Only GitLab says this; another forge's 400 is refused.
  EXPECT_EQ(classify(ForgeKind::gitea, 400, {}, R"({"message":"Cannot transition status"})").outcome,
            Outcome::refused);
  EXPECT_EQ(classify(ForgeKind::gitlab, 400, {}, R"({"message":{"state":["is invalid"]}})").outcome,
            Outcome::refused);
}

TEST(StatusAnswer, ServerErrorsTimeoutsAndTooManyRequestsAreRetried) {
  for (int code : {500, 502, 503, 504, 408, 429}) {
    EXPECT_EQ(classify(ForgeKind::github, code).outcome, Outcome::retry) << code;
  }
}

TEST(StatusAnswer, RetryAfterInSeconds) {
  StatusAnswer a = classify(ForgeKind::github, 429, Headers{{"Retry-After", "120"}});
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_EQ(a.retry_after, seconds(120));
}

TEST(StatusAnswer, RetryAfterAsAnHttpDate) {
  StatusAnswer a = classify(ForgeKind::gitea, 503, Headers{{"Retry-After", "Mon, 06 May 2024 10:08:10 GMT"}});
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_EQ(a.retry_after, seconds(90));
  // A date in the past means now.
  EXPECT_EQ(classify(ForgeKind::gitea, 503, Headers{{"Retry-After", "Mon, 06 May 2024 10:00:00 GMT"}})
                .retry_after,
            seconds(0));
  EXPECT_EQ(classify(ForgeKind::gitea, 503, Headers{{"Retry-After", "soon"}}).retry_after,
            std::nullopt);
}

TEST(StatusAnswer, GitHubPrimaryRateLimitIs403WithNoneRemaining) {
  Headers headers{{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1714990600"}};
  StatusAnswer a = classify(ForgeKind::github, 403, headers,
                            R"({"message":"API rate limit exceeded for installation ID 1."})");
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_EQ(a.retry_after, seconds(600));
  EXPECT_EQ(a.reason, "API rate limit exceeded for installation ID 1.");
}

TEST(StatusAnswer, GitHubSecondaryRateLimit) {
  StatusAnswer by_header = classify(ForgeKind::github, 403, Headers{{"Retry-After", "60"}},
                                    R"({"message":"You have exceeded a secondary rate limit."})");
  EXPECT_EQ(by_header.outcome, Outcome::retry);
  EXPECT_EQ(by_header.retry_after, seconds(60));
  StatusAnswer by_message = classify(ForgeKind::github, 403, {},
                                     R"({"message":"You have exceeded a secondary Rate Limit."})");
  EXPECT_EQ(by_message.outcome, Outcome::retry);
  EXPECT_EQ(by_message.retry_after, std::nullopt);
}

TEST(StatusAnswer, RemainingRequestsIgnoreTheResetTime) {
  Headers headers{{"x-ratelimit-remaining", "12"}, {"x-ratelimit-reset", "1714990600"}};
  StatusAnswer a = classify(ForgeKind::github, 500, headers);
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_EQ(a.retry_after, std::nullopt);
}

TEST(StatusAnswer, GitLabRateLimitHeaders) {
  Headers headers{{"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "1714990030"}};
  StatusAnswer a = classify(ForgeKind::gitlab, 429, headers, "Retry later\n");
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_EQ(a.retry_after, seconds(30));
  EXPECT_EQ(a.reason, "Retry later");
}

TEST(StatusAnswer, ForbiddenWithoutRateLimitSignsIsRefused) {
  StatusAnswer a = classify(ForgeKind::github, 403, Headers{{"x-ratelimit-remaining", "4999"}},
                            R"({"message":"Resource not accessible by integration"})");
  EXPECT_EQ(a.outcome, Outcome::refused);
  EXPECT_EQ(a.reason, "Resource not accessible by integration");
}

TEST(StatusAnswer, ClientErrorsAreRefusedWithTheForgesReason) {
  StatusAnswer unauthorized = classify(ForgeKind::gitea, 401, {}, R"({"message":"token is required"})");
  EXPECT_EQ(unauthorized.outcome, Outcome::refused);
  EXPECT_EQ(unauthorized.reason, "token is required");
  StatusAnswer not_found = classify(ForgeKind::gitlab, 404, {}, R"({"message":"404 Project Not Found"})");
  EXPECT_EQ(not_found.outcome, Outcome::refused);
  EXPECT_EQ(not_found.reason, "404 Project Not Found");
  StatusAnswer invalid = classify(
      ForgeKind::github, 422, {},
      R"json({"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","field":"description","message":"description is too long (maximum is 140 characters)"}]})json");
  EXPECT_EQ(invalid.outcome, Outcome::refused);
  EXPECT_EQ(invalid.reason,
            "Validation Failed: description is too long (maximum is 140 characters)");
  EXPECT_EQ(classify(ForgeKind::gitlab, 401, {}, R"({"error":"invalid_token"})").reason,
            "invalid_token");
  EXPECT_EQ(classify(ForgeKind::github, 410).reason, "HTTP 410");
  EXPECT_EQ(classify(ForgeKind::github, 410).outcome, Outcome::refused);
  EXPECT_EQ(classify(ForgeKind::github, 302).outcome, Outcome::refused);
}

TEST(StatusAnswer, LongOrMultiLineReasonsAreTrimmed) {
  const std::string html = "<html>\n<body>" + std::string(1000, 'x') + "</body></html>";
  StatusAnswer a = classify(ForgeKind::gitea, 502, {}, html);
  EXPECT_EQ(a.outcome, Outcome::retry);
  EXPECT_LE(a.reason.size(), 203u);
  EXPECT_EQ(a.reason.find('\n'), std::string::npos);
  EXPECT_TRUE(a.reason.starts_with("<html> <body>"));
}

}  // namespace
}  // namespace sandci::agent::forge
