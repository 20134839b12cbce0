#include "agent/egress/proxy_request.h"

#include <gtest/gtest.h>

namespace sandci::egress {
namespace {

TEST(RequestHeadEnd, FindsTheBlankLine) {
  EXPECT_EQ(request_head_end("GET http://a.example/ HTTP/1.1\r\nHost: a\r\n\r\nbody"), 43u);
  EXPECT_EQ(request_head_end("GET http://a.example/ HTTP/1.1\nHost: a\n\nbody"), 40u);
  EXPECT_EQ(request_head_end("GET http://a.example/ HTTP/1.1\r\nHost: a\r\n"), std::nullopt);
  EXPECT_EQ(request_head_end(""), std::nullopt);
}

TEST(ParseProxyRequest, ConnectNeedsHostAndPort) {
  auto request = parse_proxy_request("CONNECT Files.Example.test.:443 HTTP/1.1\r\nHost: files.example.test:443\r\n\r\n");
  ASSERT_TRUE(request.has_value()) << request.error();
  EXPECT_TRUE(request->connect);
  EXPECT_EQ(request->host, "files.example.test");
  EXPECT_EQ(request->port, 443);
  EXPECT_FALSE(parse_proxy_request("CONNECT files.example.test HTTP/1.1\r\n\r\n").has_value());
  auto v6 = parse_proxy_request("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(v6.has_value()) << v6.error();
  EXPECT_EQ(v6->host, "[::1]");
}

TEST(ParseProxyRequest, AbsoluteFormIsRewrittenToOriginForm) {
  auto request = parse_proxy_request(
      "GET http://files.example.test:8080/a/b?c=d#frag HTTP/1.1\r\n"
      "Host: somewhere.else\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"
      "Connection: keep-alive\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(request.has_value()) << request.error();
  EXPECT_FALSE(request->connect);
  EXPECT_EQ(request->host, "files.example.test");
  EXPECT_EQ(request->port, 8080);
  EXPECT_EQ(request->upstream_head,
            "GET /a/b?c=d HTTP/1.1\r\nHost: files.example.test:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n");
}

TEST(ParseProxyRequest, DefaultPortAndEmptyPath) {
  auto request = parse_proxy_request("HEAD http://files.example.test?x HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(request.has_value()) << request.error();
  EXPECT_EQ(request->port, 80);
  EXPECT_EQ(request->upstream_head, "HEAD /?x HTTP/1.0\r\nHost: files.example.test\r\nConnection: close\r\n\r\n");
}

TEST(ParseProxyRequest, RefusesWhatItDoesNotServe) {
  struct Case {
    const char* head;
    const char* why;
  };
  const Case cases[] = {
      {"GET /path HTTP/1.1\r\n\r\n", "origin-form"},
      {"GET https://a.example.test/ HTTP/1.1\r\n\r\n", "need CONNECT"},
      {"GET ftp://a.example.test/ HTTP/1.1\r\n\r\n", "not an http://"},
      {"GET http://user:pw@a.example.test/ HTTP/1.1\r\n\r\n", "userinfo"},
      {"GET http://a.example.test:99999/ HTTP/1.1\r\n\r\n", "bad port"},
      {"GET http://a.example.test:0/ HTTP/1.1\r\n\r\n", "bad port"},
      {"GET http://a.example.test:/ HTTP/1.1\r\n\r\n", "bad port"},
      {"GET http:/// HTTP/1.1\r\n\r\n", "no host"},
      {"GET http://a%2eexample.test/ HTTP/1.1\r\n\r\n", "bad host name"},
      {"GET http://a.example.test/ HTTP/2\r\n\r\n", "unsupported HTTP version"},
      {"GET  http://a.example.test/ HTTP/1.1\r\n\r\n", "bad request line"},
      {"GET http://a.example.test/\r\n\r\n", "bad request line"},
      {"\x01\x02 x HTTP/1.1\r\n\r\n", "bad request line"},
      {"GET http://a.example.test/ HTTP/1.1\r\nno colon here\r\n\r\n", "bad header line"},
      {"GET http://a.example.test/ HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", "bad header line"},
      {"\r\n\r\n", "empty request"},
  };
  for (const auto& c : cases) {
    auto request = parse_proxy_request(c.head);
    ASSERT_FALSE(request.has_value()) << c.head;
    EXPECT_NE(request.error().find(c.why), std::string::npos) << c.head << " -> " << request.error();
  }
}

}  // namespace
}  // namespace sandci::egress
