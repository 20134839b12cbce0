#include "agent/egress/egress_address.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace sandci::egress {
namespace {

std::optional<std::string> refused(const std::string& text) {
  const auto address = IpAddress::parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return refused_address_class(address.value_or(IpAddress{}));
}

// The classifier that keeps jobs' egress off internal networks: its inputs are
// the ranges it must refuse, private ones included. Nothing here is connected
// to; the tests that send traffic use loopback and namespaces they make.
TEST(RefusedAddressClass, RefusesEveryInternalRangeWithItsName) {
  struct Case {
    const char* address;
    const char* why;
  };
  const Case cases[] = {
      {"127.0.0.1", "loopback"},
      {"127.255.1.2", "loopback"},
      {"10.1.2.3", "private"},
      {"172.16.0.1", "private"},
      {"172.31.255.254", "private"},
      {"192.168.1.1", "private"},
      {"100.64.0.1", "carrier-grade NAT"},
      {"100.127.255.255", "carrier-grade NAT"},
      {"169.254.169.254", "link-local (cloud metadata)"},
      {"169.254.1.1", "link-local"},
      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"},
      {"255.255.255.255", "broadcast"},
      {"0.0.0.0", "unspecified"},
      {"0.1.2.3", "this network (0.0.0.0/8)"},
      {"240.0.0.1", "reserved (240.0.0.0/4)"},
      {"::1", "loopback"},
      {"::", "unspecified"},
      {"fe80::1", "link-local"},
      {"febf::1", "link-local"},
      {"fec0::1", "site-local"},
      {"fc00::1", "unique local (private)"},
      {"fd12:3456::1", "unique local (private)"},
      {"ff02::1", "multicast"},
      {"::ffff:127.0.0.1", "v4-mapped loopback"},
      {"::ffff:10.0.0.1", "v4-mapped private"},
      {"::ffff:169.254.169.254", "v4-mapped link-local (cloud metadata)"},
      {"::ffff:0:192.168.0.1", "v4-translated private"},
      {"64:ff9b::127.0.0.1", "NAT64 loopback"},
      {"64:ff9b::a9fe:a9fe", "NAT64 link-local (cloud metadata)"},
      {"64:ff9b:1::1", "local-use NAT64 (64:ff9b:1::/48)"},
      {"2002:7f00:1::", "6to4 loopback"},
      {"2002:c0a8:101::1", "6to4 private"},
      {"::10.0.0.1", "IPv4-compatible (deprecated)"},
  };
  for (const auto& c : cases) EXPECT_EQ(refused(c.address), std::optional<std::string>(c.why)) << c.address;
}

TEST(RefusedAddressClass, AllowsPublicAndDocumentationAddresses) {
  // The documentation ranges stay reachable on purpose: the tests' "outside" servers live there.
  for (const char* address : {"198.51.100.2", "192.0.2.10", "203.0.113.7", "8.8.8.8", "172.32.0.1", "172.15.255.255",
                              "100.128.0.1", "169.253.0.1", "223.255.255.255", "2001:db8::1", "2606:4700::1111",
                              "::ffff:198.51.100.2", "64:ff9b::c633:6402", "2002:c633:6402::1"})
    EXPECT_EQ(refused(address), std::nullopt) << address;
}

TEST(IpAddress, ParsesAndPrints) {
  EXPECT_EQ(IpAddress::parse("198.51.100.2")->to_string(), "198.51.100.2");
  EXPECT_EQ(IpAddress::parse("::FFFF:127.0.0.1")->to_string(), "::ffff:127.0.0.1");
  EXPECT_FALSE(IpAddress::parse("example.org").has_value());
  EXPECT_FALSE(IpAddress::parse("127.1").has_value());
}

TEST(IsIpLiteral, CatchesEveryFormAResolverWouldTake) {
  for (const char* host : {"127.0.0.1", "127.1", "2130706433", "0x7f000001", "0x7f.1", "017700000001", "[::1]", "::1",
                           "10.0.0.1.", "1.2.3.4.5", "example.123", "x.0x7f"})
    EXPECT_TRUE(is_ip_literal(host)) << host;
  for (const char* host : {"example.org", "a1.example.org", "1a.example.org", "localhost", "a:b"})
    EXPECT_FALSE(is_ip_literal(host)) << host;
}

class HostsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "hosts";
    std::ofstream(path_) << "# test names\n"
                            "198.51.100.2   outside.example.test  Alias.Example.Test # the outside server\n"
                            "\n"
                            "not-an-address broken.example.test\n"
                            "2001:db8::2    outside.example.test\n"
                            "127.0.0.1      loop.example.test\n";
  }
  const sandci::testing::TempDir dir_{"sandci-egress-hosts-"};
  std::filesystem::path path_;
};

TEST_F(HostsFile, ResolvesEveryLineNamingTheHostInOrder) {
  auto found = resolve_from_hosts_file(path_, "OUTSIDE.example.test.");
  ASSERT_TRUE(found.has_value()) << found.error();
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].to_string(), "198.51.100.2");
  EXPECT_EQ((*found)[1].to_string(), "2001:db8::2");
  EXPECT_EQ(resolve_from_hosts_file(path_, "alias.example.test")->front().to_string(), "198.51.100.2");
  EXPECT_EQ(resolve_from_hosts_file(path_, "loop.example.test")->front().to_string(), "127.0.0.1");
}

TEST_F(HostsFile, UnknownNamesCommentsAndBadLinesAreNotFound) {
  for (const char* host : {"missing.example.test", "broken.example.test", "the", "outside"}) {
    auto found = resolve_from_hosts_file(path_, host);
    ASSERT_FALSE(found.has_value()) << host;
    EXPECT_NE(found.error().find("not in hosts file"), std::string::npos) << found.error();
  }
}

TEST_F(HostsFile, UnreadableFileIsAnError) {
  auto found = resolve_from_hosts_file(path_.string() + ".missing", "outside.example.test");
  ASSERT_FALSE(found.has_value());
  EXPECT_NE(found.error().find("cannot be read"), std::string::npos);
}

TEST(LocalAddresses, IncludesLoopback) {
  auto own = local_addresses();
  ASSERT_TRUE(own.has_value()) << own.error();
  EXPECT_NE(std::ranges::find(*own, *IpAddress::parse("127.0.0.1")), own->end());
}

}  // namespace
}  // namespace sandci::egress
