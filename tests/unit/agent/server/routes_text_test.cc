// The small text rules of the server: escaping for pages, path segments, the
// status sender's backoff, durations for people.
#include <gtest/gtest.h>

#include "agent/server/routes.h"
#include "agent/server/run_reporter.h"
#include "agent/server/status_sender.h"

namespace sandci::agent::server {
namespace {

using std::chrono::milliseconds;

TEST(HtmlEscape, EverythingThatCouldBeMarkupIsText) {
  EXPECT_EQ(html_escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(PercentCoding, RoundTripsAndRefusesMalformed) {
  const std::string key = ".github/workflows/ci.yml/build (linux, 20)";
  EXPECT_EQ(percent_decode(percent_encode(key)), key);
  EXPECT_EQ(percent_encode("a/b c"), "a%2Fb%20c");
  EXPECT_EQ(percent_decode("%2"), std::nullopt);
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
}

TEST(RetryDelay, DoublesUpToTheCapAndHonoursRetryAfter) {
  SenderOptions options;
  options.first_retry = milliseconds(2000);
  options.longest_retry = milliseconds(60000);
  EXPECT_EQ(retry_delay(options, 1, 1.0, milliseconds(0)), milliseconds(2000));
  EXPECT_EQ(retry_delay(options, 2, 1.0, milliseconds(0)), milliseconds(4000));
  EXPECT_EQ(retry_delay(options, 4, 1.0, milliseconds(0)), milliseconds(16000));
  EXPECT_EQ(retry_delay(options, 20, 1.0, milliseconds(0)), milliseconds(60000));
  EXPECT_EQ(retry_delay(options, 1, 0.5, milliseconds(0)), milliseconds(1000)) << "jitter scales";
  EXPECT_EQ(retry_delay(options, 1, 1.0, milliseconds(30000)), milliseconds(30000)) << "never before Retry-After";
}

TEST(HumanDuration, ReadsLikeAForge) {
  EXPECT_EQ(human_duration(800), "0.8s");
  EXPECT_EQ(human_duration(12'400), "12s");
  EXPECT_EQ(human_duration(184'000), "3m4s");
}

}  // namespace
}  // namespace sandci::agent::server
