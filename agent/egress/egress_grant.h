#pragma once
// What a repository's jobs may reach through the egress proxy: host name patterns,
// ports and per-job limits. Made only from the agent's configuration (or
// `sandci run --allow-host`), never from a workflow.
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::egress {

struct EgressGrant {
  std::vector<std::string> hosts;            // "pypi.example.org", "*.example.org" (one label or more)
  std::vector<std::uint16_t> ports{80, 443};
  std::optional<std::uint64_t> max_bytes;    // per job, both directions together
  int max_connections = 32;                  // at once, per job
};

// Checks and normalises the patterns: lower-cased, a trailing dot dropped; "*." only
// as the whole first label and followed by at least two labels ("*.org" is refused);
// labels of letters, digits and '-' (1..63 characters, no leading or trailing '-');
// no IP addresses, no ports, no empty list. Ports must be 1..65535 (an empty list
// means 80 and 443), max_connections >= 1, max_bytes >= 1 when set. The error names
// the bad value: `egress grant: host pattern "10.0.0.1" is an IP address; grant host
// names only`.
std::expected<EgressGrant, std::string> make_grant(std::vector<std::string> hosts, std::vector<std::uint16_t> ports,
                                                   std::optional<std::uint64_t> max_bytes, int max_connections);

// True when `host` matches one of the grant's patterns: compared case-insensitively,
// a trailing dot ignored; "*.example.org" matches "a.example.org" and
// "a.b.example.org" but not "example.org". An IP literal never matches.
bool host_granted(const EgressGrant& grant, std::string_view host);

// True when the grant lists `port`.
bool port_granted(const EgressGrant& grant, std::uint16_t port);

}  // namespace sandci::egress
