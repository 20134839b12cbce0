#pragma once
// Talks to systemd when the agent runs as a Type=notify service: READY once it
// has recovered and listens, RELOADING then READY around a SIGHUP reload, STOPPING
// on shutdown, WATCHDOG pings while its event loop is alive. Outside systemd (no
// $NOTIFY_SOCKET) every call does nothing. Also takes the listening socket systemd
// hands over with socket activation (sandci-agent.socket).
#include <chrono>
#include <expected>
#include <optional>
#include <string>

namespace sandci::agent::server {

class SystemdNotifier {
 public:
  void ready(const std::string& status);
  void stopping();
  void reloading();
  void status(const std::string& text);
  void watchdog();
  // How often to ping: half of $WATCHDOG_USEC, or nothing when no watchdog is set.
  std::optional<std::chrono::milliseconds> watchdog_interval() const;
};

// The listening socket systemd passed (the sd_listen_fds protocol: $LISTEN_FDS
// sockets from fd 3, meant for this process when $LISTEN_PID is its pid). nullopt
// when none was passed for this process; an error when more than one was (the agent
// serves one address: one ListenStream= line) or fd 3 is not a listening stream
// socket. The variables are unset either way, so no child process inherits them,
// and the descriptor is made close-on-exec.
std::expected<std::optional<int>, std::string> systemd_listen_socket();

}  // namespace sandci::agent::server
