#pragma once
// libgit2 1.5 has no network timeouts (GIT_OPT_SET_SERVER_TIMEOUT arrived in 1.7): its
// socket stream connects and reads with plain blocking calls, so a silent server hangs
// a fetch forever. We register our own plain-socket stream with libgit2 (http, git://
// and, below TLS, https use it) that connects with a timeout and polls before each
// read and write. The limits come from a NetDeadline set on the calling thread, since
// libgit2 does a fetch's network I/O on the thread that called it.
//
// SSH: libgit2's libssh2 transport reads the socket's descriptor itself, so our stream
// keeps the exact layout of libgit2 1.5's git_socket_stream; for SSH only the connect
// timeout applies, and the fetch's progress callbacks enforce the overall deadline.
#include <chrono>

namespace sandci::git {

struct NetLimits {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::milliseconds connect_timeout{30'000};
  std::chrono::milliseconds idle_timeout{120'000};  // longest silence from the server
};

// Sets the limits for libgit2 network calls on this thread for its lifetime.
class NetDeadline {
 public:
  explicit NetDeadline(const NetLimits& limits);
  ~NetDeadline();
  NetDeadline(const NetDeadline&) = delete;
  NetDeadline& operator=(const NetDeadline&) = delete;

  bool timed_out() const;        // a connect, read or write ran out of time
  bool connect_failed() const;   // no address of the host accepted a connection

 private:
  NetLimits previous_;
};

// Registers the stream (libgit2 1.5 only; a no-op on other versions). Called once.
void register_net_stream();

}  // namespace sandci::git
