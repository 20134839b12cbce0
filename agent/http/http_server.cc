#include "agent/http/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace sandci::agent::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using Clock = std::chrono::steady_clock;

// How long a closing connection keeps reading (and discarding) what the client still
// sends, so that closing with unread data does not reset the connection before the
// client has read our answer (a 413 sent while the client is still uploading).
constexpr std::chrono::milliseconds kLingerTime{1000};
// How long accept() waits before retrying after running out of file descriptors.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

std::string to_std(beast::string_view s) { return std::string{s.data(), s.size()}; }

// Sent as is to a connection over max_connections, without reading from it.
constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 19\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "server is too busy\n";

constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_parse_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::header_limit && ec != bhttp::error::body_limit;
}

// A client reaching a dual-stack ("::") listener over IPv4 shows as 1.2.3.4, not
// ::ffff:1.2.3.4, so logs and allow-lists see one form.
std::string printable(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  return address.to_string();
}

// A status the wire can carry as a final response; anything else becomes 500.
bool is_valid_final_status(int status) { return status >= 200 && status <= 599; }

bool status_has_no_body(int status) { return status == 204 || status == 304; }

// Fields the server sets itself from the message; a handler's copies are dropped.
bool is_managed_field(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
}

const char* status_text(int status) {
  switch (status) {
    case 400: return "bad request\n";
    case 413: return "request body too large\n";
    case 431: return "request header fields too large\n";
    default: return "internal server error\n";
  }
}

}  // namespace

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close_now() = 0;      // network thread only
  virtual void close_if_idle() = 0;  // network thread only
};

struct HttpServer::Core {
  Core(HttpServerOptions opts, Handler h)
      : options(std::move(opts)), handler(std::move(h)), pool(options.handler_threads) {}

  ~Core() {
    if (net_thread.joinable()) net_thread.join();
  }

  // Runs `fn` on the network thread unless the server has stopped (then drops it).
  template <class Fn>
  void post_to_network(Fn&& fn) {
    std::lock_guard lock(post_mutex);
    if (posts_open) asio::post(io, std::forward<Fn>(fn));
  }

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  void add_session(SessionBase* s, std::weak_ptr<SessionBase> w) {
    std::lock_guard lock(sessions_mutex);
    sessions.emplace(s, std::move(w));
  }
  void remove_session(SessionBase* s) {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(s);
  }
  std::vector<std::shared_ptr<SessionBase>> live_sessions() {
    std::vector<std::weak_ptr<SessionBase>> weak;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto& [ptr, w] : sessions) weak.push_back(w);
    }
    std::vector<std::shared_ptr<SessionBase>> live;
    for (auto& w : weak)
      if (auto s = w.lock()) live.push_back(std::move(s));
    return live;
  }

  void do_accept(std::shared_ptr<Core> self);
  void on_accept(std::shared_ptr<Core> self, const error_code& ec, tcp::socket socket);
  void refuse(tcp::socket& socket);

  HttpServerOptions options;
  Handler handler;
  asio::io_context io{1};  // declared first among the I/O objects: destroyed last
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  asio::thread_pool pool;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread net_thread;
  std::uint16_t bound_port = 0;
  std::string bound_address;
  std::chrono::steady_clock::time_point last_refusal_log{};  // network thread only

  std::atomic<std::size_t> open{0};
  std::atomic<bool> draining{false};

  std::mutex post_mutex;
  bool posts_open = true;  // guarded by post_mutex

  std::mutex sessions_mutex;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // guarded by sessions_mutex

  std::mutex stop_mutex;
  bool stopped = false;  // guarded by stop_mutex
};

namespace {

// One connection. All its I/O runs on the network thread; a handler thread reaches it
// only through ResponseSlot, which posts to the network thread.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<HttpServer::Core> core, Stream stream)
      : core_(std::move(core)), stream_(std::move(stream)) {
    error_code ec;
    const auto peer = tcp_layer().socket().remote_endpoint(ec);
    remote_ = ec ? std::string{"unknown"} : printable(peer.address());
  }

  ~Session() override {
    core_->remove_session(this);
    core_->open.fetch_sub(1);
  }

  void run() {
    core_->add_session(this, this->weak_from_this());
    header_deadline_ = Clock::now() + core_->options.header_timeout;
    if constexpr (kTls) {
      tcp_layer().expires_at(header_deadline_);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](const error_code& ec) {
                                if (self->closed_) return;
                                if (ec) return self->drop("TLS handshake failed: " + ec.message());
                                self->wait_for_request();
                              });
    } else {
      wait_for_request();
    }
  }

  void close_now() override {
    closed_ = true;
    tcp_layer().close();
  }

  void close_if_idle() override {
    if (idle_) close_now();
  }

  // Network thread: writes the handler's answer, then reads the next request or closes.
  void write_response(HttpResponse response) {
    if (closed_) return;
    if (!is_valid_final_status(response.status)) response = HttpResponse::text(500, status_text(500));
    auto& res = response_.emplace(static_cast<bhttp::status>(response.status), version_);
    for (const auto& [name, value] : response.headers)
      if (is_valid_header_name(name) && is_valid_header_value(value) && !is_managed_field(name))
        res.insert(name, value);
    if (!res.count(bhttp::field::server)) res.set(bhttp::field::server, "sandci");
    if (!status_has_no_body(response.status)) res.body() = std::move(response.body);
    keep_alive_ = keep_alive_ && !core_->draining;
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    send(head_request_);
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using Parser = bhttp::request_parser<bhttp::string_body>;

  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  // Waits for the first byte of the next request: up to idle_timeout between requests,
  // within header_timeout of the connection's start for the first one.
  void wait_for_request() {
    if (buffer_.size() > 0) return read_header();
    if (core_->draining) return close_now();
    idle_ = true;
    if (requests_ == 0)
      tcp_layer().expires_at(header_deadline_);
    else
      tcp_layer().expires_after(core_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](const error_code& ec,
                                                                                      std::size_t n) {
      self->idle_ = false;
      if (self->closed_) return;
      if (ec) return self->close_now();  // an idle connection closed or timed out: nothing to say
      self->buffer_.commit(n);
      if (self->requests_ > 0) self->header_deadline_ = Clock::now() + self->core_->options.header_timeout;
      self->read_header();
    });
  }

  void read_header() {
    auto& parser = parser_.emplace();
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(core_->options.max_header_bytes, UINT32_MAX)));
    parser.body_limit(static_cast<std::uint64_t>(core_->options.max_body_bytes));
    tcp_layer().expires_at(header_deadline_);
    bhttp::async_read_header(stream_, buffer_, parser,
                             [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                               if (self->closed_) return;
                               if (ec) return self->on_read_error(ec, "header");
                               self->on_header();
                             });
  }

  void on_header() {
    ++requests_;
    const auto length = parser_->content_length();
    if (length && *length > core_->options.max_body_bytes) return on_read_error(bhttp::error::body_limit, "body");
    const auto& req = parser_->get();
    if (iequals(to_std(req[bhttp::field::expect]), "100-continue")) {
      tcp_layer().expires_after(core_->options.write_timeout);
      return asio::async_write(stream_, asio::buffer(kContinueResponse.data(), kContinueResponse.size()),
                               [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                                 if (self->closed_) return;
                                 if (ec) return self->close_now();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    tcp_layer().expires_after(core_->options.body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](const error_code& ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->on_read_error(ec, "body");
      self->dispatch();
    });
  }

  void on_read_error(const error_code& ec, const char* part) {
    if (ec == bhttp::error::header_limit) return refuse_request(431, "header over limit");
    if (ec == bhttp::error::body_limit) return refuse_request(413, "body over limit");
    if (is_parse_error(ec)) return refuse_request(400, "malformed request: " + ec.message());
    if (ec == beast::error::timeout) return drop(std::string{"timed out reading the "} + part);
    close_now();  // the client went away: nobody to answer
  }

  void drop(const std::string& why) {
    core_->log("http: dropped connection from " + remote_ + ": " + why);
    close_now();
  }

  // Answers an error the server found itself and closes: the rest of the stream cannot
  // be trusted to be at a message boundary.
  void refuse_request(int status, const std::string& why) {
    core_->log("http: " + std::to_string(status) + " to " + remote_ + ": " + why);
    auto& res = response_.emplace(static_cast<bhttp::status>(status), 11);
    res.set(bhttp::field::server, "sandci");
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = status_text(status);
    keep_alive_ = false;
    res.keep_alive(false);
    res.prepare_payload();
    send(false);
  }

  void dispatch() {
    auto message = parser_->release();
    parser_.reset();
    version_ = message.version();
    keep_alive_ = message.keep_alive();
    head_request_ = message.method() == bhttp::verb::head;

    HttpRequest request;
    request.method = to_std(message.method_string());
    request.target = to_std(message.target());
    for (const auto& field : message) request.headers.add(to_std(field.name_string()), to_std(field.value()));
    request.body = std::move(message.body());
    request.remote_address = remote_;

    auto slot = std::make_shared<ResponseSlot>(this->shared_from_this());
    Responder responder = [slot](HttpResponse response) { slot->respond(std::move(response)); };
    auto* core = core_.get();
    asio::post(core->pool, [core, request = std::move(request), responder = std::move(responder)]() mutable {
      try {
        core->handler(std::move(request), responder);
      } catch (...) {
        responder(HttpResponse::text(500, status_text(500)));
      }
    });
  }

  void send(bool header_only) {
    serializer_.emplace(*response_);
    tcp_layer().expires_after(core_->options.write_timeout);
    auto on_written = [self = this->shared_from_this()](const error_code& ec, std::size_t) {
      self->serializer_.reset();
      self->response_.reset();
      if (self->closed_) return;
      if (ec) return self->drop("write failed: " + ec.message());
      if (!self->keep_alive_) return self->close_gracefully();
      self->wait_for_request();
    };
    if (header_only)
      bhttp::async_write_header(stream_, *serializer_, std::move(on_written));
    else
      bhttp::async_write(stream_, *serializer_, std::move(on_written));
  }

  void close_gracefully() {
    if constexpr (kTls) {
      tcp_layer().expires_after(kLingerTime);
      stream_.async_shutdown([self = this->shared_from_this()](const error_code&) { self->close_now(); });
    } else {
      error_code ec;
      tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return close_now();
      linger_until_ = Clock::now() + kLingerTime;
      discard_input();
    }
  }

  // Reads and throws away what the client still sends, until it closes or time is up.
  void discard_input() {
    tcp_layer().expires_at(linger_until_);
    tcp_layer().async_read_some(asio::buffer(discard_),
                                [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                                  if (self->closed_) return;
                                  if (ec) return self->close_now();
                                  self->discard_input();
                                });
  }

  // Holds the connection until the handler answers; answers 500 if it never does.
  class ResponseSlot {
   public:
    explicit ResponseSlot(std::shared_ptr<Session> session) : session_(std::move(session)) {}
    ~ResponseSlot() { respond(HttpResponse::text(500, status_text(500))); }
    void respond(HttpResponse response) {
      if (answered_.exchange(true)) return;
      auto& core = *session_->core_;
      core.post_to_network([session = session_, response = std::move(response)]() mutable {
        session->write_response(std::move(response));
      });
    }

   private:
    std::shared_ptr<Session> session_;
    std::atomic<bool> answered_{false};
  };

  std::shared_ptr<HttpServer::Core> core_;
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;
  std::array<char, 4096> discard_{};
  Clock::time_point header_deadline_{};
  Clock::time_point linger_until_{};
  std::size_t requests_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_request_ = false;
  bool idle_ = false;
  bool closed_ = false;
};

}  // namespace

void HttpServer::Core::do_accept(std::shared_ptr<Core> self) {
  acceptor.async_accept(io, [self](const error_code& ec, tcp::socket socket) {
    self->on_accept(self, ec, std::move(socket));
  });
}

void HttpServer::Core::on_accept(std::shared_ptr<Core> self, const error_code& ec, tcp::socket socket) {
  if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or memory: accepting again at once would spin.
    log("http: accept failed: " + ec.message());
    accept_retry.expires_after(kAcceptRetryDelay);
    accept_retry.async_wait([self](const error_code& wait_ec) {
      if (!wait_ec) self->do_accept(self);
    });
    return;
  }
  if (open.load() >= options.max_connections) {
    refuse(socket);
  } else {
    open.fetch_add(1);
    if (tls) {
      auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          self, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls));
      s->run();
    } else {
      auto s = std::make_shared<Session<beast::tcp_stream>>(self, beast::tcp_stream(std::move(socket)));
      s->run();
    }
  }
  do_accept(self);
}

// Over max_connections: one non-blocking write of a fixed 503 (plain HTTP only; a TLS
// client would need a handshake first) and close. Nothing is read or kept.
void HttpServer::Core::refuse(tcp::socket& socket) {
  error_code ec;
  // One line a second at most: a flood must not become a flood of log lines.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_log >= std::chrono::seconds(1)) {
    last_refusal_log = now;
    log("http: refusing new connections: " + std::to_string(options.max_connections) + " open");
  }
  if (!tls) {
    socket.non_blocking(true, ec);
    if (!ec) socket.write_some(asio::buffer(kBusyResponse.data(), kBusyResponse.size()), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }
  socket.close(ec);
}

namespace {

std::optional<std::string> load_tls(asio::ssl::context& ctx, const TlsFiles& files) {
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                  asio::ssl::context::single_dh_use);
  error_code ec;
  ctx.use_certificate_chain_file(files.cert_file.string(), ec);
  if (ec) return "TLS certificate " + files.cert_file.string() + ": " + ec.message();
  ctx.use_private_key_file(files.key_file.string(), asio::ssl::context::pem, ec);
  if (ec) return "TLS key " + files.key_file.string() + ": " + ec.message();
  return std::nullopt;
}


// Takes over a socket someone else bound and put in listening state (systemd, for
// socket activation): only a listening IPv4 or IPv6 stream socket will do.
std::optional<std::string> adopt_listener(tcp::acceptor& acceptor, int fd) {
  const std::string where = "listening socket (fd " + std::to_string(fd) + ")";
  int type = 0, listening = 0;
  socklen_t size = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0) return where + ": not a socket";
  size = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || type != SOCK_STREAM || !listening)
    return where + ": not a listening stream socket";
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) return where + ": " + std::strerror(errno);
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6)
    return where + ": not an IPv4 or IPv6 socket (a unix socket is not supported)";
  error_code ec;
  acceptor.assign(local.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) return where + ": " + ec.message();
  return std::nullopt;
}

}  // namespace

std::expected<std::unique_ptr<HttpServer>, std::string> HttpServer::start(HttpServerOptions options,
                                                                          Handler handler) {
  if (!handler) return std::unexpected("HTTP server: no handler");
  if (options.listen_fd >= 0) options.address = "0.0.0.0";  // unused: the socket is adopted as bound
  if (options.handler_threads == 0) return std::unexpected("HTTP server: handler_threads must be at least 1");
  if (options.max_connections == 0) return std::unexpected("HTTP server: max_connections must be at least 1");
  error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) return std::unexpected("HTTP server: bad listen address \"" + options.address + "\": " + ec.message());
  const tcp::endpoint endpoint{address, options.port};
  const std::string where = (address.is_v6() ? "[" + options.address + "]" : options.address) + ":" +
                            std::to_string(options.port);

  auto core = std::make_shared<Core>(std::move(options), std::move(handler));
  if (core->options.tls) {
    core->tls.emplace(asio::ssl::context::tls_server);
    if (auto error = load_tls(*core->tls, *core->options.tls)) return std::unexpected("HTTP server: " + *error);
  }
  auto& acceptor = core->acceptor;
  if (core->options.listen_fd >= 0) {
    if (auto error = adopt_listener(acceptor, core->options.listen_fd)) return std::unexpected("HTTP server: " + *error);
  } else {
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return std::unexpected(where + ": " + ec.message());
  }
  const auto local = acceptor.local_endpoint(ec);
  core->bound_port = local.port();
  core->bound_address = printable(local.address());

  core->work.emplace(core->io.get_executor());
  core->do_accept(core);
  core->net_thread = std::thread([c = core.get()] {
    // A throwing completion handler must not end the server's only network thread.
    for (;;) {
      try {
        c->io.run();
        return;
      } catch (const std::exception& e) {
        c->log(std::string{"http: network thread caught: "} + e.what());
      }
    }
  });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(core)));
}

HttpServer::HttpServer(std::shared_ptr<Core> core) : core_(std::move(core)) {}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return core_->bound_port; }

std::string HttpServer::address() const { return core_->bound_address; }

std::size_t HttpServer::open_connections() const { return core_->open.load(); }

void HttpServer::stop_accepting() {
  core_->draining = true;
  core_->post_to_network([c = core_.get()] {
    error_code ec;
    c->acceptor.close(ec);
    c->accept_retry.cancel();
    for (auto& s : c->live_sessions()) s->close_if_idle();
  });
}

void HttpServer::stop() {
  std::lock_guard lock(core_->stop_mutex);
  if (core_->stopped) return;
  core_->stopped = true;
  core_->draining = true;

  // 1. Close the listener and every connection on the network thread, and wait for it:
  //    after this no request reaches the handler pool.
  std::promise<void> closed;
  core_->post_to_network([c = core_.get(), &closed] {
    error_code ec;
    c->acceptor.close(ec);
    c->accept_retry.cancel();
    for (auto& s : c->live_sessions()) s->close_now();
    closed.set_value();
  });
  closed.get_future().wait();

  // 2. Let running handlers return; their answers go to closed connections.
  core_->pool.join();

  // 3. Refuse later answers (a responder kept past stop()), then let the network
  //    thread finish what the closed sockets still have in flight.
  {
    std::lock_guard post_lock(core_->post_mutex);
    core_->posts_open = false;
  }
  core_->work.reset();
  if (core_->net_thread.joinable()) core_->net_thread.join();
}

}  // namespace sandci::agent::http
