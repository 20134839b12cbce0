#pragma once
// An HTTP/1.1 server for untrusted clients (webhooks from the internet). It knows no
// routes: every well-formed request goes to one Handler. Boost.Beast lives in
// http_server.cc only.
//
// Defences, all per connection unless said otherwise:
// - deadlines: TLS handshake and request headers (header_timeout, counted from the
//   first byte of the request), body (body_timeout), waiting for the next request on a
//   kept-alive connection (idle_timeout), writing the response (write_timeout). A
//   client that misses one is disconnected.
// - limits: headers over max_header_bytes get 431, a body (by Content-Length or
//   chunked) over max_body_bytes gets 413, malformed HTTP gets 400; each then closes
//   the connection. Nothing is buffered past a limit, so a connection costs at most
//   about max_header_bytes + max_body_bytes + 64 KiB of memory.
// - max_connections: a connection beyond it is answered 503 (plain HTTP) or closed at
//   once (TLS) without being read, so a flood costs no memory or lasting descriptor.
//   When accept() runs out of descriptors the server waits a moment and retries.
//
// Threads: one network thread runs all I/O; handlers run on a pool of
// handler_threads and may block. The network thread never runs user code.
//
// Streaming responses (server-sent events, a growing log) can be added later as a
// new member of HttpResponse (a body source the server pulls from) without changing
// Handler, Responder or this class.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/http/http_types.h"

namespace sandci::agent::http {

struct TlsFiles {
  std::filesystem::path cert_file{};  // PEM: the server certificate, then any intermediates
  std::filesystem::path key_file{};   // PEM: its private key
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";  // an IPv4 or IPv6 address ("0.0.0.0", "::")
  std::uint16_t port = 0;             // 0: any free port (see HttpServer::port())
  // >= 0: a TCP socket already bound and listening (systemd socket activation) that
  // the server takes over and closes when it stops; address and port are then unused.
  int listen_fd = -1;
  std::optional<TlsFiles> tls{};      // set: HTTPS only
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 25 * 1024 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // also the TLS handshake's
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{30'000};  // between requests on one connection
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t max_connections = 256;
  std::size_t handler_threads = 4;
  // Told, one line each, what the server handled itself (a 400, 413, 431 or 503, a
  // client dropped at a deadline). Runs on the network thread: must be quick and
  // must not throw. Lines carry the peer's address, never header values or bodies.
  std::function<void(const std::string&)> log{};
};

// Answers the request it was given. Call it exactly once, from any thread, at any
// time (also after the server stopped: then it does nothing). Later calls are
// ignored. If every copy is destroyed without a call, the client gets 500.
using Responder = std::function<void(HttpResponse)>;
// Runs on a handler thread; may block. An exception escaping it answers 500.
using Handler = std::function<void(HttpRequest, Responder)>;

class HttpServer {
 public:
  // Binds, listens (or adopts options.listen_fd) and starts the threads. The error
  // names the address and the cause ("127.0.0.1:8080: Address already in use", a TLS
  // file that cannot be loaded, an address that does not parse, a listen_fd that is
  // not a listening TCP socket, a zero handler_threads or max_connections).
  static std::expected<std::unique_ptr<HttpServer>, std::string> start(HttpServerOptions options,
                                                                        Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port bound (the chosen one when options.port was 0).
  std::uint16_t port() const;
  // The address listened on ("127.0.0.1", "::"), as bound or as adopted.
  std::string address() const;

  // Graceful: closes the listening socket and the idle kept-alive connections;
  // requests already being read or handled are still answered (with
  // "Connection: close"), then their connections close. Returns at once; wait for
  // open_connections() to reach 0, then call stop(). Idempotent.
  void stop_accepting();

  // Closes the listener and every connection, waits for running handlers to return
  // and joins all threads. Responses not yet written are lost. Idempotent. Must not
  // be called from a handler (it waits for the handlers).
  void stop();

  // Connections accepted and not yet closed (the refused ones over
  // max_connections are never counted).
  std::size_t open_connections() const;

  struct Core;  // the Beast side (http_server.cc)

 private:
  explicit HttpServer(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace sandci::agent::http
