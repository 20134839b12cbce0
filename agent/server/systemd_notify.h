#pragma once
// Talks to systemd when the agent runs as a Type=notify service: READY once it
// has recovered and listens, STOPPING on shutdown, WATCHDOG pings while its
// event loop is alive. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
#include <chrono>
#include <optional>
#include <string>

namespace sandci::agent::server {

class SystemdNotifier {
 public:
  void ready(const std::string& status);
  void stopping();
  void status(const std::string& text);
  void watchdog();
  // How often to ping: half of $WATCHDOG_USEC, or nothing when no watchdog is set.
  std::optional<std::chrono::milliseconds> watchdog_interval() const;
};

}  // namespace sandci::agent::server
