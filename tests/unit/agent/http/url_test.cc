#include "agent/http/url.h"

#include <gtest/gtest.h>

namespace sandci::agent::http {
namespace {

TEST(ParseUrl, HttpsWithDefaultPortAndPath) {
  const auto url = parse_url("https://api.github.com/repos/o/r/statuses/abc");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "api.github.com");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/repos/o/r/statuses/abc");
  EXPECT_TRUE(url->is_https());
  EXPECT_FALSE(url->host_is_ip());
  EXPECT_EQ(url->host_header(), "api.github.com");
}

TEST(ParseUrl, ExplicitPortQueryAndNoPath) {
  auto url = parse_url("HTTP://Example.COM:8080?a=1#frag");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->target, "/?a=1");
  EXPECT_EQ(url->host_header(), "example.com:8080");

  url = parse_url("http://127.0.0.1");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/");
  EXPECT_TRUE(url->host_is_ip());
}

TEST(ParseUrl, Ipv6LiteralInBrackets) {
  const auto url = parse_url("https://[::1]:4443/x?token=secret");
  ASSERT_TRUE(url) << url.error();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 4443);
  EXPECT_TRUE(url->host_is_ip());
  EXPECT_EQ(url->host_header(), "[::1]:4443");
  EXPECT_EQ(url->for_errors(), "https://[::1]:4443/x");
}

TEST(ParseUrl, ErrorsSayWhatIsWrong) {
  const auto expect_error = [](std::string_view input, std::string_view why) {
    const auto url = parse_url(input);
    ASSERT_FALSE(url) << input;
    EXPECT_NE(url.error().find(why), std::string::npos) << url.error();
  };
  expect_error("example.com/x", "missing scheme");
  expect_error("ftp://example.com/", "unsupported scheme");
  expect_error("http:///x", "empty host");
  expect_error("http://host:0/", "port must be");
  expect_error("http://host:65536/", "port must be");
  expect_error("http://host:12ab/", "port must be");
  expect_error("http://host:/", "empty port");
  expect_error("http://[::1/", "unterminated IPv6");
  expect_error("http://[zz::1]/", "bad IPv6");
  expect_error("http://[::1]x/", "after the IPv6");
  expect_error("http://user:pw@host/", "user info");
  expect_error("http://ho st/", "space");
  expect_error("http://host/\r\nX: y", "control character");
  expect_error("http://ho$t/", "bad character in host");
}

TEST(ParseUrl, ErrorsDoNotQuoteTheQuery) {
  const auto url = parse_url("ftp://host/x?access_token=hunter2");
  ASSERT_FALSE(url);
  EXPECT_EQ(url.error().find("hunter2"), std::string::npos) << url.error();
}

}  // namespace
}  // namespace sandci::agent::http
