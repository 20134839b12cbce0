#pragma once
// Absolute http:// and https:// URLs, split into what a client needs to connect.
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace sandci::agent::http {

struct Url {
  std::string scheme;  // "http" or "https" (lower case)
  std::string host;    // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 0;  // the explicit port, else 80 or 443
  std::string target;  // path and query, at least "/"; the fragment is dropped

  bool is_https() const { return scheme == "https"; }
  // True when `host` is an IPv4 or IPv6 address rather than a name.
  bool host_is_ip() const;
  // The Host header value: the host (IPv6 in brackets), with ":port" unless default.
  std::string host_header() const;
  // "scheme://host:port/path" without the query: safe for error messages and logs,
  // since a query may carry a token.
  std::string for_errors() const;
};

// Parses an absolute URL. Accepts only the http and https schemes (any case), a
// non-empty host (a name, dotted IPv4, or an IPv6 literal in brackets), an optional
// port 1-65535, and a path/query of visible ASCII. Refuses user info ("user:pw@host":
// credentials belong in headers), spaces and control characters. The error says
// what is wrong and quotes the URL up to its query.
std::expected<Url, std::string> parse_url(std::string_view url);

}  // namespace sandci::agent::http
