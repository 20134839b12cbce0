#include "git/net_stream.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sandci::git {
namespace {

using Clock = std::chrono::steady_clock;

struct ThreadNetState {
  NetLimits limits;
  bool timed_out = false;
  bool connect_failed = false;
};
thread_local ThreadNetState tls_state;

// Same layout as libgit2 1.5's git_socket_stream (streams/socket.h): its SSH transport
// takes the descriptor from `s` through that struct.
struct SocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
};

int remaining_ms(std::chrono::milliseconds limit) {
  auto now = Clock::now();
  auto until_deadline = tls_state.limits.deadline == Clock::time_point::max()
                            ? limit
                            : std::chrono::duration_cast<std::chrono::milliseconds>(
                                  tls_state.limits.deadline - now);
  auto ms = std::min(limit, until_deadline).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 24LL * 3600 * 1000));
}

// Waits for `events` on fd. 1 ready, 0 timed out (error set), -1 error (error set).
int wait_fd(int fd, short events, std::chrono::milliseconds limit, const char* what) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, remaining_ms(limit));
    if (rc > 0) return 1;
    if (rc == 0) {
      tls_state.timed_out = true;
      git_error_set(GIT_ERROR_NET, "timed out %s", what);
      return 0;
    }
    if (errno == EINTR) continue;
    git_error_set(GIT_ERROR_NET, "poll failed %s: %s", what, std::strerror(errno));
    return -1;
  }
}

int connect_one(const addrinfo* ai, int& out_errno) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    out_errno = errno;
    return -1;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      out_errno = errno;
      close(fd);
      return -1;
    }
    if (wait_fd(fd, POLLOUT, tls_state.limits.connect_timeout, "connecting") != 1) {
      out_errno = ETIMEDOUT;
      close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      out_errno = err;
      close(fd);
      return -1;
    }
  }
  // Back to blocking: libssh2 expects the descriptor as libgit2 would hand it over.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

int stream_connect(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* info = nullptr;
  if (int rc = getaddrinfo(st->host, st->port, &hints, &info); rc != 0) {
    tls_state.connect_failed = true;
    git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", st->host,
                  gai_strerror(rc));
    return -1;
  }
  int last_errno = 0;
  for (addrinfo* p = info; p != nullptr; p = p->ai_next) {
    st->s = connect_one(p, last_errno);
    if (st->s >= 0) break;
    if (tls_state.timed_out) break;
  }
  freeaddrinfo(info);
  if (st->s < 0) {
    if (!tls_state.timed_out) {
      tls_state.connect_failed = true;
      git_error_set(GIT_ERROR_NET, "failed to connect to %s: %s", st->host,
                    std::strerror(last_errno));
    }
    return -1;
  }
  return 0;
}

ssize_t stream_write(git_stream* stream, const char* data, size_t len, int flags) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  while (true) {
    if (wait_fd(st->s, POLLOUT, tls_state.limits.idle_timeout, "sending to the server") != 1) {
      return -1;
    }
    ssize_t n = send(st->s, data, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    git_error_set(GIT_ERROR_NET, "error sending data: %s", std::strerror(errno));
    return -1;
  }
}

ssize_t stream_read(git_stream* stream, void* data, size_t len) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  while (true) {
    if (wait_fd(st->s, POLLIN, tls_state.limits.idle_timeout, "waiting for the server") != 1) {
      return -1;
    }
    ssize_t n = recv(st->s, data, len, MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    git_error_set(GIT_ERROR_NET, "error receiving socket data: %s", std::strerror(errno));
    return -1;
  }
}

int stream_close(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  int rc = st->s >= 0 ? close(st->s) : 0;
  st->s = -1;
  return rc;
}

void stream_free(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int stream_init(git_stream** out, const char* host, const char* port) {
  auto* st = new SocketStream{};
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = stream_connect;
  st->parent.read = stream_read;
  st->parent.write = stream_write;
  st->parent.close = stream_close;
  st->parent.free = stream_free;
  st->host = strdup(host);
  st->port = strdup(port ? port : "");
  st->s = -1;
  *out = &st->parent;
  return 0;
}

}  // namespace

NetDeadline::NetDeadline(const NetLimits& limits) : previous_(tls_state.limits) {
  tls_state.limits = limits;
  tls_state.timed_out = false;
  tls_state.connect_failed = false;
}

NetDeadline::~NetDeadline() { tls_state.limits = previous_; }

bool NetDeadline::timed_out() const { return tls_state.timed_out; }
bool NetDeadline::connect_failed() const { return tls_state.connect_failed; }

void register_net_stream() {
#if LIBGIT2_VER_MAJOR == 1 && LIBGIT2_VER_MINOR == 5
  static git_stream_registration registration{GIT_STREAM_VERSION, stream_init, nullptr};
  git_stream_register(GIT_STREAM_STANDARD, &registration);
#endif
}

}  // namespace sandci::git
