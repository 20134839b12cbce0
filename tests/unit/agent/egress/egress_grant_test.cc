#include "agent/egress/egress_grant.h"

#include <gtest/gtest.h>

namespace sandci::egress {
namespace {

EgressGrant grant_of(std::vector<std::string> hosts) {
  auto grant = make_grant(std::move(hosts), {}, std::nullopt, 32);
  EXPECT_TRUE(grant.has_value()) << grant.error();
  return grant.value_or(EgressGrant{});
}

TEST(MakeGrant, NormalisesPatternsAndDefaultsPorts) {
  auto grant = make_grant({"PyPI.Example.ORG.", "*.Mirror.example.net"}, {}, 1000, 4);
  ASSERT_TRUE(grant.has_value()) << grant.error();
  EXPECT_EQ(grant->hosts, (std::vector<std::string>{"pypi.example.org", "*.mirror.example.net"}));
  EXPECT_EQ(grant->ports, (std::vector<std::uint16_t>{80, 443}));
  EXPECT_EQ(grant->max_bytes, 1000u);
  EXPECT_EQ(grant->max_connections, 4);
}

TEST(MakeGrant, RefusesBadPatternsNamingThem) {
  struct Case {
    std::string pattern;
    std::string expected_part;
  };
  const Case cases[] = {
      {"10.0.0.1", "is an IP address"},
      {"2130706433", "is an IP address"},
      {"::1", "is an IP address"},
      {"[::1]", "is an IP address"},
      {"example.org:8080", "port"},
      {"*", "'*'"},
      {"*.org", "top-level"},
      {"a.*.example.org", "'*'"},
      {"*example.org", "'*'"},
      {"**.example.org", "'*'"},
      {"localhost", "top-level"},
      {"", "is empty"},
      {"exa mple.org", "invalid label"},
      {"-bad.example.org", "invalid label"},
      {"a..example.org", "invalid label"},
      {"http://example.org", "port"},
  };
  for (const auto& c : cases) {
    auto grant = make_grant({"ok.example.org", c.pattern}, {}, std::nullopt, 1);
    ASSERT_FALSE(grant.has_value()) << c.pattern;
    EXPECT_NE(grant.error().find("\"" + c.pattern + "\""), std::string::npos) << grant.error();
    EXPECT_NE(grant.error().find(c.expected_part), std::string::npos) << c.pattern << ": " << grant.error();
  }
}

TEST(MakeGrant, RefusesBadLimitsAndPorts) {
  EXPECT_FALSE(make_grant({}, {}, std::nullopt, 1).has_value());
  EXPECT_NE(make_grant({"a.example.org"}, {443, 0}, std::nullopt, 1).error().find("port 0"), std::string::npos);
  EXPECT_NE(make_grant({"a.example.org"}, {}, 0, 1).error().find("max_bytes"), std::string::npos);
  EXPECT_NE(make_grant({"a.example.org"}, {}, std::nullopt, 0).error().find("max_connections"), std::string::npos);
}

TEST(HostGranted, ExactNamesIgnoreCaseAndTrailingDot) {
  const auto grant = grant_of({"pypi.example.org"});
  EXPECT_TRUE(host_granted(grant, "pypi.example.org"));
  EXPECT_TRUE(host_granted(grant, "PYPI.Example.Org."));
  EXPECT_FALSE(host_granted(grant, "example.org"));
  EXPECT_FALSE(host_granted(grant, "x.pypi.example.org"));
  EXPECT_FALSE(host_granted(grant, "pypi.example.org.evil.test"));
  EXPECT_FALSE(host_granted(grant, "evilpypi.example.org"));
  EXPECT_FALSE(host_granted(grant, ""));
}

TEST(HostGranted, WildcardCoversOneLabelOrMoreButNotTheParent) {
  const auto grant = grant_of({"*.example.org"});
  EXPECT_TRUE(host_granted(grant, "a.example.org"));
  EXPECT_TRUE(host_granted(grant, "a.b.example.org"));
  EXPECT_TRUE(host_granted(grant, "A.EXAMPLE.ORG."));
  EXPECT_FALSE(host_granted(grant, "example.org"));
  EXPECT_FALSE(host_granted(grant, "badexample.org"));
  EXPECT_FALSE(host_granted(grant, ".example.org"));
  EXPECT_FALSE(host_granted(grant, "example.org.evil.test"));
}

TEST(HostGranted, IpLiteralsNeverMatch) {
  const auto grant = grant_of({"*.example.org"});
  EXPECT_FALSE(host_granted(grant, "10.0.0.1"));
  EXPECT_FALSE(host_granted(grant, "1.example.org.2"));
  EXPECT_FALSE(host_granted(grant, "[::1]"));
}

TEST(PortGranted, OnlyListedPorts) {
  auto grant = make_grant({"a.example.org"}, {8443}, std::nullopt, 1);
  ASSERT_TRUE(grant.has_value());
  EXPECT_TRUE(port_granted(*grant, 8443));
  EXPECT_FALSE(port_granted(*grant, 443));
  EXPECT_FALSE(port_granted(*grant, 22));
}

}  // namespace
}  // namespace sandci::egress
