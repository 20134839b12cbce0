#pragma once
// Addresses the egress proxy may connect to, and name resolution for it.
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::egress {

struct IpAddress {
  int family = AF_INET;                  // AF_INET (bytes[0..3]) or AF_INET6 (all 16)
  std::array<std::uint8_t, 16> bytes{};

  // Parses a plain dotted-quad IPv4 or an IPv6 address (no brackets, no zone).
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress from_sockaddr(const sockaddr* addr);
  std::string to_string() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Why the proxy must never connect to `address` ("loopback", "private",
// "link-local", "carrier-grade NAT", "multicast", "broadcast", "unspecified",
// "this network (0/8)", "reserved (240/4)", "unique local", "site-local",
// "v4-mapped loopback"...), or nullopt when it may. IPv6 forms that carry an IPv4
// address (v4-mapped ::ffff:0:0/96, v4-translated, NAT64 64:ff9b::/96, 6to4 2002::/16)
// are judged by that IPv4 address; IPv4-compatible ::/96 and local NAT64
// 64:ff9b:1::/48 are refused outright.
// The documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are NOT
// refused: the tests put their "outside" servers there, in namespaces they make.
std::optional<std::string> refused_address_class(const IpAddress& address);

// True for text any resolver would take as an IP address: what inet_pton accepts
// (IPv4, IPv6, "[...]" bracketed) and the old inet_aton forms ("2130706433",
// "0x7f.1", "127.1").
bool is_ip_literal(std::string_view host);

// The addresses `host` has in an /etc/hosts-format file (every line naming it,
// case-insensitive, trailing dot ignored, '#' comments), in file order. Error: the
// file cannot be read, or it does not name the host.
std::expected<std::vector<IpAddress>, std::string> resolve_from_hosts_file(const std::string& path,
                                                                           std::string_view host);

// The addresses getaddrinfo gives for `host` (TCP, IPv4 and IPv6), in its order.
// Error: getaddrinfo's message with the host.
std::expected<std::vector<IpAddress>, std::string> resolve_with_system(std::string_view host);

// Every address of every interface in the calling thread's network namespace.
// Error: getifaddrs failed (the proxy then refuses, as it cannot check).
std::expected<std::vector<IpAddress>, std::string> local_addresses();

}  // namespace sandci::egress
