#include "agent/egress/egress_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sandci::egress {
namespace {

struct V4Range {
  std::uint32_t base;
  int prefix;
  const char* why;
};

constexpr std::uint32_t v4(int a, int b, int c, int d) {
  return (std::uint32_t(a) << 24) | (std::uint32_t(b) << 16) | (std::uint32_t(c) << 8) | std::uint32_t(d);
}

// Refused IPv4 ranges. Not here on purpose: the documentation ranges 192.0.2.0/24,
// 198.51.100.0/24 and 203.0.113.0/24, which the tests use for their "outside" servers.
constexpr V4Range kRefusedV4[] = {
    {v4(0, 0, 0, 0), 32, "unspecified"},
    {v4(0, 0, 0, 0), 8, "this network (0.0.0.0/8)"},
    {v4(127, 0, 0, 0), 8, "loopback"},
    {v4(10, 0, 0, 0), 8, "private"},
    {v4(172, 16, 0, 0), 12, "private"},
    {v4(192, 168, 0, 0), 16, "private"},
    {v4(100, 64, 0, 0), 10, "carrier-grade NAT"},
    {v4(169, 254, 169, 254), 32, "link-local (cloud metadata)"},
    {v4(169, 254, 0, 0), 16, "link-local"},
    {v4(224, 0, 0, 0), 4, "multicast"},
    {v4(255, 255, 255, 255), 32, "broadcast"},
    {v4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"},
};

std::optional<std::string> refused_v4(std::uint32_t address) {
  for (const auto& range : kRefusedV4) {
    const std::uint32_t mask = range.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - range.prefix);
    if ((address & mask) == range.base) return range.why;
  }
  return std::nullopt;
}

std::uint32_t v4_at(const std::array<std::uint8_t, 16>& b, int offset) {
  return (std::uint32_t(b[offset]) << 24) | (std::uint32_t(b[offset + 1]) << 16) |
         (std::uint32_t(b[offset + 2]) << 8) | std::uint32_t(b[offset + 3]);
}

bool starts_with_bytes(const std::array<std::uint8_t, 16>& b, std::initializer_list<std::uint8_t> prefix) {
  return std::equal(prefix.begin(), prefix.end(), b.begin());
}

std::optional<std::string> embedded_v4(const std::array<std::uint8_t, 16>& b, int offset, const char* form) {
  if (auto why = refused_v4(v4_at(b, offset))) return std::string(form) + " " + *why;
  return std::nullopt;
}

std::optional<std::string> refused_v6(const std::array<std::uint8_t, 16>& b) {
  const bool first80_zero = std::all_of(b.begin(), b.begin() + 10, [](auto x) { return x == 0; });
  const bool first96_zero = first80_zero && b[10] == 0 && b[11] == 0;
  if (first96_zero) {
    const std::uint32_t low = v4_at(b, 12);
    if (low == 0) return "unspecified";
    if (low == 1) return "loopback";
    return "IPv4-compatible (deprecated)";
  }
  if (first80_zero && b[10] == 0xff && b[11] == 0xff) return embedded_v4(b, 12, "v4-mapped");
  if (std::all_of(b.begin(), b.begin() + 8, [](auto x) { return x == 0; }) && b[8] == 0xff && b[9] == 0xff &&
      b[10] == 0 && b[11] == 0)
    return embedded_v4(b, 12, "v4-translated");
  if (starts_with_bytes(b, {0x00, 0x64, 0xff, 0x9b}) &&
      std::all_of(b.begin() + 4, b.begin() + 12, [](auto x) { return x == 0; }))
    return embedded_v4(b, 12, "NAT64");
  if (starts_with_bytes(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) return "local-use NAT64 (64:ff9b:1::/48)";
  if (starts_with_bytes(b, {0x20, 0x02})) return embedded_v4(b, 2, "6to4");
  if (b[0] == 0xff) return "multicast";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local";
  if ((b[0] & 0xfe) == 0xfc) return "unique local (private)";
  return std::nullopt;
}

std::string lower_without_trailing_dot(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  std::string out(host);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string s(text);
  IpAddress out;
  if (::inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) return out;
  out.family = AF_INET6;
  if (::inet_pton(AF_INET6, s.c_str(), out.bytes.data()) == 1) return out;
  return std::nullopt;
}

IpAddress IpAddress::from_sockaddr(const sockaddr* addr) {
  IpAddress out;
  out.family = addr->sa_family;
  if (addr->sa_family == AF_INET)
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, 4);
  else
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, 16);
  return out;
}

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, bytes.data(), text, sizeof text);
  return text;
}

std::optional<std::string> refused_address_class(const IpAddress& address) {
  if (address.family == AF_INET) return refused_v4(v4_at(address.bytes, 0));
  if (address.family == AF_INET6) return refused_v6(address.bytes);
  return "not an IP address";
}

bool is_ip_literal(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.starts_with('[')) return true;
  const std::string s(host);
  in6_addr v6address{};
  if (host.find(':') != std::string_view::npos) return ::inet_pton(AF_INET6, s.c_str(), &v6address) == 1;
  in_addr v4address{};
  if (::inet_aton(s.c_str(), &v4address) == 1) return true;
  // A last label of digits (or 0x...) is never a registered name; resolvers may take
  // the whole as a number, so treat it as one.
  const auto last = host.substr(host.rfind('.') == std::string_view::npos ? 0 : host.rfind('.') + 1);
  return !last.empty() && std::isdigit(static_cast<unsigned char>(last.front()));
}

std::expected<std::vector<IpAddress>, std::string> resolve_from_hosts_file(const std::string& path,
                                                                           std::string_view host) {
  std::ifstream in(path);
  if (!in) return std::unexpected("hosts file " + path + " cannot be read");
  const std::string wanted = lower_without_trailing_dot(host);
  std::vector<IpAddress> found;
  for (std::string line; std::getline(in, line);) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string address_text;
    if (!(words >> address_text)) continue;
    const auto address = IpAddress::parse(address_text);
    if (!address) continue;
    for (std::string name; words >> name;)
      if (lower_without_trailing_dot(name) == wanted && std::ranges::find(found, *address) == found.end())
        found.push_back(*address);
  }
  if (found.empty()) return std::unexpected(std::string(host) + " is not in hosts file " + path);
  return found;
}

std::expected<std::vector<IpAddress>, std::string> resolve_with_system(std::string_view host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string name(host);
  if (const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list); rc != 0)
    return std::unexpected(name + ": " + ::gai_strerror(rc));
  std::vector<IpAddress> found;
  for (auto* entry = list; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
    const auto address = IpAddress::from_sockaddr(entry->ai_addr);
    if (std::ranges::find(found, address) == found.end()) found.push_back(address);
  }
  ::freeaddrinfo(list);
  if (found.empty()) return std::unexpected(name + ": no IPv4 or IPv6 address");
  return found;
}

std::expected<std::vector<IpAddress>, std::string> local_addresses() {
  std::vector<IpAddress> found;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::unexpected(std::string("getifaddrs: ") + std::strerror(errno));
  for (auto* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    if (entry->ifa_addr->sa_family != AF_INET && entry->ifa_addr->sa_family != AF_INET6) continue;
    found.push_back(IpAddress::from_sockaddr(entry->ifa_addr));
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace sandci::egress
