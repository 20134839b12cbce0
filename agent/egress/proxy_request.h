#pragma once
// The head of a request a client sends the egress proxy, parsed: where it wants to
// go and, for plain HTTP, the head to send upstream instead.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace sandci::egress {

inline constexpr std::size_t kMaxRequestHead = 16 * 1024;

struct ProxyRequest {
  bool connect = false;        // CONNECT host:port (a tunnel), else plain HTTP forwarding
  std::string host;            // lower-cased, trailing dot dropped; may be an IP literal ("[::1]", "10.0.0.1")
  std::uint16_t port = 0;
  std::string upstream_head;   // plain HTTP only: origin-form request line, Host set from the target,
                               // Proxy-* / Connection / Keep-Alive dropped, "Connection: close" added
};

// Where the head ends in `buffer` (the index just past the blank line, CRLF CRLF or
// LF LF), or nullopt when it has not ended yet.
std::optional<std::size_t> request_head_end(std::string_view buffer);

// Parses a complete head (up to and including its blank line). Error: why it is not
// a proxy request this proxy serves ("bad request line", "origin-form target: this is
// a proxy, send absolute-form \"http://host/path\"", "https:// targets need CONNECT",
// "bad port", "userinfo in the target", "bad header line"...).
std::expected<ProxyRequest, std::string> parse_proxy_request(std::string_view head);

}  // namespace sandci::egress
