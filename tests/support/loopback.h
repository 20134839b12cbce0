#pragma once

// Ports on 127.0.0.1 for the servers tests and benches start (git daemons,
// test forges, the agent): one copy for the integration tests and the benches.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <thread>

namespace sandci::testing {

// The lowest port the kernel hands out for outgoing connections and bind(0)
// (net.ipv4.ip_local_port_range).
inline int ephemeral_port_low() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return (in >> low) ? low : 0;
}

inline bool can_bind_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A port nobody listens on right now, below the ephemeral range: between this
// call and the server's bind, which can be seconds apart, no outgoing connection
// of the many tests running at once can take it (a port from bind(0) could be,
// and the agent then failed with "Address already in use"). Picked at random so
// that tests picking at once rarely meet; taken ports are skipped.
inline int free_port() {
  const int high = ephemeral_port_low() - 1;
  const int low = std::max(high - 12000, 10000);
  static std::atomic<unsigned> sequence{0};
  std::minstd_rand random(static_cast<unsigned>(getpid()) * 7919u + sequence++ +
                          static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  for (int attempt = 0; high > low && attempt < 200; ++attempt) {
    const int port = low + static_cast<int>(random() % static_cast<unsigned>(high - low));
    if (can_bind_port(port)) return port;
  }
  // No range below the ephemeral one: let the kernel choose.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Whether something accepts connections on 127.0.0.1:port.
inline bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// Waits up to 10 s (500 tries, 20 ms apart) for a server to listen on port.
inline bool wait_for_port(int port) {
  for (int i = 0; i < 500; ++i) {
    if (port_open(port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace sandci::testing
