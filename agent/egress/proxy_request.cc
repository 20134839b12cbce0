#include "agent/egress/proxy_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace sandci::egress {
namespace {

bool is_token_char(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::ranges::all_of(s, is_token_char); }

std::string lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string_view> split_lines(std::string_view head) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const auto nl = head.find('\n');
    auto line = head.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    head.remove_prefix(nl + 1);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || !std::ranges::all_of(text, [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  unsigned value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

struct Authority {
  std::string host;
  std::optional<std::uint16_t> port;
};

// "host", "host:port", "[v6]", "[v6]:port". The host keeps its brackets so it is
// recognised as an IP literal (and refused) later.
std::expected<Authority, std::string> parse_authority(std::string_view text) {
  if (text.find('@') != std::string_view::npos) return std::unexpected("userinfo in the target");
  Authority out;
  std::string_view host = text, port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::unexpected("bad IPv6 literal in the target");
    host = text.substr(0, close + 1);
    const auto after = text.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return std::unexpected("bad target authority");
      port = after.substr(1);
      if (port.empty()) return std::unexpected("bad port in the target");
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return std::unexpected("bad port in the target");
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.empty()) return std::unexpected("no host in the target");
  const bool host_chars_ok = std::ranges::all_of(host, [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '[' || c == ']' || c == ':';
  });
  if (!host_chars_ok || host.size() > 255) return std::unexpected("bad host name in the target");
  out.host = lower(host);
  if (!port.empty()) {
    out.port = parse_port(port);
    if (!out.port) return std::unexpected("bad port in the target");
  }
  return out;
}

bool dropped_header(const std::string& name) {
  return name == "proxy-connection" || name == "proxy-authorization" || name == "connection" ||
         name == "keep-alive" || name == "host";
}

}  // namespace

std::optional<std::size_t> request_head_end(std::string_view buffer) {
  for (std::size_t nl = buffer.find('\n'); nl != std::string_view::npos; nl = buffer.find('\n', nl + 1)) {
    if (nl + 1 < buffer.size() && buffer[nl + 1] == '\n') return nl + 2;
    if (nl + 2 < buffer.size() && buffer[nl + 1] == '\r' && buffer[nl + 2] == '\n') return nl + 3;
  }
  return std::nullopt;
}

std::expected<ProxyRequest, std::string> parse_proxy_request(std::string_view head) {
  const auto lines = split_lines(head);
  if (lines.empty()) return std::unexpected("empty request");
  const std::string_view request_line = lines.front();
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos)
    return std::unexpected("bad request line");
  const auto method = request_line.substr(0, sp1);
  const auto target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = request_line.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) return std::unexpected("bad request line");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::unexpected("unsupported HTTP version");

  std::string headers;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto line = lines[i];
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return std::unexpected("bad header line");
    if (!dropped_header(lower(line.substr(0, colon)))) headers.append(line).append("\r\n");
  }

  ProxyRequest out;
  if (method == "CONNECT") {
    auto authority = parse_authority(target);
    if (!authority) return std::unexpected(authority.error());
    if (!authority->port) return std::unexpected("CONNECT target needs a port (host:443)");
    out.connect = true;
    out.host = std::move(authority->host);
    out.port = *authority->port;
    return out;
  }
  const std::string scheme_part = lower(target.substr(0, std::min<std::size_t>(target.size(), 8)));
  if (scheme_part.starts_with("https://")) return std::unexpected("https:// targets need CONNECT");
  if (!scheme_part.starts_with("http://"))
    return std::unexpected(target.starts_with('/') ? "origin-form target: this is a proxy, send absolute-form "
                                                     "\"http://host/path\""
                                                   : "target is not an http:// URL");
  const auto rest = target.substr(7);
  const auto path_start = rest.find_first_of("/?#");
  const auto authority_text = rest.substr(0, path_start);
  auto authority = parse_authority(authority_text);
  if (!authority) return std::unexpected(authority.error());
  out.host = std::move(authority->host);
  out.port = authority->port.value_or(80);
  std::string_view path = path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
  path = path.substr(0, path.find('#'));
  // "http://host?q" has an empty path: origin-form needs "/?q".
  const std::string_view slash = path.starts_with('/') ? "" : "/";
  out.upstream_head.append(method).append(" ").append(slash).append(path).append(" ").append(version).append("\r\n");
  out.upstream_head.append("Host: ").append(authority_text).append("\r\n");
  out.upstream_head.append(headers).append("Connection: close\r\n\r\n");
  return out;
}

}  // namespace sandci::egress
