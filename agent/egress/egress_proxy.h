#pragma once
// The egress proxy: the only way out for a job granted network. It speaks plain HTTP
// forwarding (absolute-form requests, "GET http://host/path HTTP/1.1") and CONNECT
// tunnels (it never terminates TLS). For every connection it:
// - reads the request head within header_timeout and max 16 KiB (else 400 / dropped);
// - refuses raw IP literals (any form inet_aton or inet_pton accepts), host names not
//   in the grant, ports not in the grant (403, one-line body saying why);
// - resolves the name itself (hosts_file or the system resolver, 502 when it fails)
//   and refuses the destination if any address it got is a refused one
//   (egress_address.h: loopback, private, link-local/metadata, CGNAT, multicast,
//   broadcast, reserved, their IPv6 and v4-mapped/NAT64 forms) or an address of the
//   namespace outbound sockets are made in (getifaddrs there);
// - connects only to the addresses it checked (no second resolution, so DNS
//   rebinding gains nothing), within connect_timeout (502 when none answers);
// - relays both ways until either side closes, idle_timeout passes with no byte
//   either way, the job's byte limit is reached, or the proxy stops.
// Per job: at most grant.max_connections at once (429 beyond), bytes both ways
// counted against grant.max_bytes (429 for new connections, open ones closed).
// Plain HTTP requests go upstream with "Connection: close" and Proxy-* headers
// dropped: one request per client connection.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "agent/egress/egress_grant.h"

namespace sandci::egress {

struct EgressEvent {
  std::string host;  // as the client asked (lower-cased); empty if the request did not parse
  std::uint16_t port = 0;
  bool allowed = false;
  std::string reason;  // why refused or how it ended ("closed", "idle timeout", "byte limit reached")
  std::uint64_t bytes_up = 0, bytes_down = 0;
};

struct EgressProxyOptions {
  std::string hosts_file;      // non-empty: names resolve from this /etc/hosts-format file only (tests); else the system resolver
  std::string outbound_netns;  // non-empty: path of a network namespace in which outbound sockets are made (setns in a helper thread); else the caller's own
  std::chrono::seconds connect_timeout{10}, idle_timeout{60}, header_timeout{10};
  // Once per client connection: refused at once, allowed at its end. Runs on a
  // connection thread (calls may be concurrent); must not throw.
  std::function<void(const EgressEvent&)> on_event;
};

class EgressProxy {
 public:
  // Serves on listen_fd, a listening TCP socket the caller made (usually inside a
  // namespace the runner made); takes ownership (closed on error too). Own threads:
  // one accepting, one per client connection. Errors: listen_fd not a listening
  // socket, outbound_netns that cannot be opened or entered, an invalid grant.
  static std::expected<std::unique_ptr<EgressProxy>, std::string> start(int listen_fd, EgressGrant grant,
                                                                         EgressProxyOptions options);
  ~EgressProxy();  // stops and closes every connection; no callback after it returns

  std::uint64_t bytes() const;  // bytes relayed so far, both directions, all connections
  int refused() const;          // connections refused so far

  class Impl;

 private:
  explicit EgressProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandci::egress
