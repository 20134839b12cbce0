#include "agent/http/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace sandci::agent::http {

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_ipv4(const std::string& host) {
  in_addr addr{};
  return ::inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr addr{};
  return ::inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool is_visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool is_host_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

// The URL as it may be quoted in an error: without query and fragment.
std::string quoted(std::string_view url) {
  return "\"" + std::string{url.substr(0, url.find_first_of("?#"))} + "\"";
}

std::unexpected<std::string> invalid(std::string_view url, std::string_view why) {
  return std::unexpected("invalid URL " + quoted(url) + ": " + std::string{why});
}

}  // namespace

bool Url::host_is_ip() const { return is_ipv4(host) || is_ipv6(host); }

std::string Url::host_header() const {
  std::string h = is_ipv6(host) ? "[" + host + "]" : host;
  const std::uint16_t default_port = is_https() ? 443 : 80;
  if (port != default_port) h += ":" + std::to_string(port);
  return h;
}

std::string Url::for_errors() const {
  std::string h = is_ipv6(host) ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port) + std::string{std::string_view{target}.substr(0, target.find('?'))};
}

std::expected<Url, std::string> parse_url(std::string_view url) {
  if (!is_visible_ascii(url)) return invalid(url, "contains a space, a control character or non-ASCII");
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return invalid(url, "missing scheme (expected http:// or https://)");
  Url out;
  out.scheme = lower(url.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https")
    return invalid(url, "unsupported scheme \"" + out.scheme + "\" (expected http or https)");

  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('#'));
  const auto authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return invalid(url, "user info is not supported (send credentials in a header)");

  std::string_view port_text;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid(url, "unterminated IPv6 address");
    out.host = std::string{authority.substr(1, close - 1)};
    if (!is_ipv6(out.host)) return invalid(url, "bad IPv6 address");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) return invalid(url, "unexpected text after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
    if (after == ":") return invalid(url, "empty port");
  } else {
    const auto colon = authority.find(':');
    out.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return invalid(url, "empty port");
    }
    if (out.host.empty()) return invalid(url, "empty host");
    if (!std::all_of(out.host.begin(), out.host.end(), is_host_name_char))
      return invalid(url, "bad character in host name");
    out.host = lower(out.host);
  }

  if (port_text.empty()) {
    out.port = out.is_https() ? 443 : 80;
  } else {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
      return invalid(url, "port must be a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(value);
  }

  out.target = target.empty() ? "/" : std::string{target};
  if (out.target.front() == '?') out.target.insert(0, "/");
  return out;
}

}  // namespace sandci::agent::http
