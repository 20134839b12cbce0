#include "agent/server/systemd_notify.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace sandci::agent::server {

void SystemdNotifier::ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void SystemdNotifier::reloading() { sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration"); }

void SystemdNotifier::stopping() { sd_notify(0, "STOPPING=1\nSTATUS=draining running jobs"); }

void SystemdNotifier::status(const std::string& text) { sd_notify(0, ("STATUS=" + text).c_str()); }

void SystemdNotifier::watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::milliseconds> SystemdNotifier::watchdog_interval() const {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::milliseconds(usec / 2000);
}

std::expected<std::optional<int>, std::string> systemd_listen_socket() {
  const int count = sd_listen_fds(1);
  if (count < 0) return std::unexpected("socket activation: " + std::string(strerror(-count)));
  if (count == 0) return std::nullopt;
  if (count > 1)
    return std::unexpected("socket activation: systemd passed " + std::to_string(count) +
                           " sockets; the agent listens on one (a single ListenStream= line)");
  const int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
    return std::unexpected("socket activation: fd " + std::to_string(fd) + " is not a listening stream socket");
  return fd;
}

}  // namespace sandci::agent::server
