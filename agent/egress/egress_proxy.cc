#include "agent/egress/egress_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <utility>

#include "agent/egress/egress_address.h"
#include "agent/egress/proxy_request.h"

namespace sandci::egress {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::string errno_text(int error) { return std::strerror(error); }

int millis_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// An answer the proxy gives itself, before any byte went upstream.
struct Answer {
  int status;
  const char* phrase;
  std::string reason;  // one line, without the "sandci egress: " prefix
};

Answer forbidden(std::string reason) { return {403, "Forbidden", std::move(reason)}; }

}  // namespace

class EgressProxy::Impl {
 public:
  Impl(Fd listen_fd, Fd netns_fd, Fd stop_fd, EgressGrant grant, EgressProxyOptions options)
      : listen_fd_(std::move(listen_fd)),
        netns_fd_(std::move(netns_fd)),
        stop_fd_(std::move(stop_fd)),
        grant_(std::move(grant)),
        options_(std::move(options)) {}

  void run() { acceptor_ = std::thread([this] { accept_loop(); }); }

  ~Impl() {
    stopping_ = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(stop_fd_.get(), &one, sizeof one);
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& connection : connections_) connection.thread.join();
  }

  std::uint64_t bytes() const { return bytes_; }
  int refused() const { return refused_; }

 private:
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  // Where a connection stands while it is served; reported once at its end.
  struct Session {
    Fd client;
    EgressEvent event;
    bool counted = false;  // holds one of max_connections
  };

  enum class Wait { ready, timeout, stopped, error };

  Wait wait_for(int fd, short events, Clock::time_point deadline) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd_.get(), POLLIN, 0}};
    while (true) {
      if (stopping_) return Wait::stopped;
      const int rc = ::poll(fds, 2, millis_until(deadline));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return Wait::error;
      if (fds[1].revents != 0) return Wait::stopped;
      if (rc == 0) {
        if (Clock::now() >= deadline) return Wait::timeout;
        continue;
      }
      return Wait::ready;
    }
  }

  void accept_loop() {
    while (wait_for(listen_fd_.get(), POLLIN, Clock::now() + std::chrono::hours(1)) != Wait::stopped) {
      reap();
      Fd client(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!client) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      // Threads beyond the limit only answer 429; past a small margin more the
      // connection is closed unread so a flood cannot make threads without bound.
      if (connections_.size() >= static_cast<std::size_t>(grant_.max_connections) + kRefusalMargin) {
        ++refused_;
        report({.host = "", .port = 0, .allowed = false,
                .reason = "connection limit reached (closed without reading)"});
        continue;
      }
      auto& connection = connections_.emplace_back();
      connection.thread = std::thread([this, &connection, fd = std::move(client)]() mutable {
        serve(std::move(fd));
        connection.done = true;
      });
    }
  }

  void reap() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void report(const EgressEvent& event) {
    if (options_.on_event) options_.on_event(event);
  }

  void serve(Fd client) {
    Session session{std::move(client), {}, false};
    if (active_.fetch_add(1) < grant_.max_connections) {
      session.counted = true;
    }
    serve_session(session);
    active_.fetch_sub(1);
    report(session.event);
  }

  void serve_session(Session& session) {
    std::string buffer;
    const auto head_end = read_head(session, buffer);
    if (!head_end) return;
    auto request = parse_proxy_request(std::string_view(buffer).substr(0, *head_end));
    if (!request) {
      return answer(session, {400, "Bad Request", "bad request: " + request.error()});
    }
    session.event.host = request->host;
    session.event.port = request->port;
    if (auto refusal = check_request(session, *request)) return answer(session, *refusal);
    if (netns_fd_ && ::setns(netns_fd_.get(), CLONE_NEWNET) != 0)
      return answer(session, {502, "Bad Gateway", "cannot enter the outbound network namespace: " + errno_text(errno)});
    auto addresses = resolve(request->host);
    if (!addresses) return answer(session, {502, "Bad Gateway", "cannot resolve " + request->host + ": " + addresses.error()});
    if (auto refusal = check_addresses(request->host, *addresses)) return answer(session, *refusal);
    auto upstream = connect_any(*addresses, request->port);
    if (!upstream)
      return answer(session, {502, "Bad Gateway",
                              "cannot connect to " + request->host + ":" + std::to_string(request->port) + " (" +
                                  upstream.error() + ")"});
    session.event.allowed = true;
    std::string first_up, first_down;
    if (request->connect) {
      first_down = "HTTP/1.1 200 Connection established\r\n\r\n";
    } else {
      first_up = request->upstream_head;
    }
    first_up += buffer.substr(*head_end);
    relay(session, upstream->get(), std::move(first_up), std::move(first_down), request->connect);
  }

  // Reads until the head ends; on failure answers or drops the client itself.
  std::optional<std::size_t> read_head(Session& session, std::string& buffer) {
    const auto deadline = Clock::now() + options_.header_timeout;
    char chunk[4096];
    while (true) {
      if (auto end = request_head_end(buffer)) return end;
      if (buffer.size() >= kMaxRequestHead) {
        answer(session, {431, "Request Header Fields Too Large",
                         "request head over " + std::to_string(kMaxRequestHead) + " bytes"});
        return std::nullopt;
      }
      const auto waited = wait_for(session.client.get(), POLLIN, deadline);
      if (waited != Wait::ready) {
        refuse_silently(session, waited == Wait::timeout ? "request head not received within the header timeout"
                                                         : "proxy stopped before the request head");
        return std::nullopt;
      }
      const auto want = std::min(sizeof chunk, kMaxRequestHead - buffer.size());
      const auto got = ::recv(session.client.get(), chunk, want, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        refuse_silently(session, buffer.empty() ? "client closed without a request" : "client closed mid-request");
        return std::nullopt;
      }
      buffer.append(chunk, static_cast<std::size_t>(got));
    }
  }

  std::optional<Answer> check_request(const Session& session, const ProxyRequest& request) {
    if (is_ip_literal(request.host))
      return forbidden("raw IP address " + request.host + " refused; use a host name granted for this repository");
    if (!host_granted(grant_, request.host)) return forbidden(request.host + " not granted for this repository");
    if (!port_granted(grant_, request.port))
      return forbidden("port " + std::to_string(request.port) + " not granted for this repository (" + request.host +
                       ")");
    if (!session.counted)
      return Answer{429, "Too Many Requests",
                    "connection limit (" + std::to_string(grant_.max_connections) + " at once) reached for this job"};
    if (grant_.max_bytes && bytes_ >= *grant_.max_bytes)
      return Answer{429, "Too Many Requests",
                    "byte limit (" + std::to_string(*grant_.max_bytes) + " bytes) reached for this job"};
    return std::nullopt;
  }

  std::expected<std::vector<IpAddress>, std::string> resolve(const std::string& host) {
    if (!options_.hosts_file.empty()) return resolve_from_hosts_file(options_.hosts_file, host);
    return resolve_with_system(host);
  }

  // Runs in the outbound namespace: its own addresses are the ones to refuse.
  std::optional<Answer> check_addresses(const std::string& host, const std::vector<IpAddress>& addresses) {
    const auto own = local_addresses();
    if (!own) return forbidden("cannot list the proxy's own addresses (" + own.error() + "), refused");
    for (const auto& address : addresses) {
      if (auto why = refused_address_class(address))
        return forbidden(host + " resolves to " + address.to_string() + " (" + *why + "), refused");
      if (std::ranges::find(*own, address) != own->end())
        return forbidden(host + " resolves to " + address.to_string() +
                         ", an address of the proxy's own network namespace, refused");
    }
    return std::nullopt;
  }

  std::expected<Fd, std::string> connect_any(const std::vector<IpAddress>& addresses, std::uint16_t port) {
    const auto deadline = Clock::now() + options_.connect_timeout;
    std::string errors;
    for (const auto& address : addresses) {
      auto connected = connect_one(address, port, deadline);
      if (connected) return connected;
      errors += (errors.empty() ? "" : "; ") + address.to_string() + ": " + connected.error();
      if (stopping_ || Clock::now() >= deadline) break;
    }
    return std::unexpected(errors);
  }

  std::expected<Fd, std::string> connect_one(const IpAddress& address, std::uint16_t port, Clock::time_point deadline) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (address.family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&storage);
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      std::memcpy(&in->sin_addr, address.bytes.data(), 4);
      length = sizeof(sockaddr_in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
      length = sizeof(sockaddr_in6);
    }
    Fd fd(::socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return std::unexpected("socket: " + errno_text(errno));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0 && errno != EINPROGRESS)
      return std::unexpected(errno_text(errno));
    switch (wait_for(fd.get(), POLLOUT, deadline)) {
      case Wait::ready: break;
      case Wait::timeout: return std::unexpected("connect timed out");
      case Wait::stopped: return std::unexpected("proxy stopped");
      case Wait::error: return std::unexpected("poll: " + errno_text(errno));
    }
    int error = 0;
    socklen_t error_length = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &error_length);
    if (error != 0) return std::unexpected(errno_text(error));
    return fd;
  }

  // Takes up to `want` bytes of the job's byte budget; 0 when it is spent.
  std::uint64_t take_budget(std::uint64_t want) {
    if (!grant_.max_bytes) {
      bytes_ += want;
      return want;
    }
    std::uint64_t used = bytes_.load();
    while (true) {
      if (used >= *grant_.max_bytes) return 0;
      const std::uint64_t granted = std::min(want, *grant_.max_bytes - used);
      if (bytes_.compare_exchange_weak(used, used + granted)) return granted;
    }
  }

  void give_back(std::uint64_t unused) { bytes_ -= unused; }

  // One direction of the relay: bytes read from `from` waiting to be written to `to`.
  struct Direction {
    int from, to;
    std::string pending;
    std::size_t offset = 0;
    bool eof = false;
    bool shut = false;
    std::uint64_t* count;
    bool flushed() const { return offset >= pending.size(); }
  };

  void relay(Session& session, int upstream, std::string first_up, std::string first_down, bool tunnel) {
    const int client = session.client.get();
    Direction up{client, upstream, {}, 0, false, false, &session.event.bytes_up};
    Direction down{upstream, client, std::move(first_down), 0, false, false, &session.event.bytes_down};
    // What the proxy itself sent first (the rewritten head) counts like relayed bytes.
    const auto first_budget = take_budget(first_up.size());
    if (first_budget < first_up.size()) {
      give_back(first_budget);
      session.event.reason = "byte limit reached";
      return;
    }
    session.event.bytes_up += first_up.size();
    up.pending = std::move(first_up);
    auto idle_deadline = Clock::now() + options_.idle_timeout;
    while (true) {
      for (Direction* d : {&up, &down})
        if (d->eof && d->flushed() && !d->shut) {
          ::shutdown(d->to, SHUT_WR);
          d->shut = true;
        }
      if (up.shut && down.shut) return end(session, "closed");
      // Plain HTTP is one request with "Connection: close": the answer's end is the end.
      if (!tunnel && down.shut) return end(session, "closed");
      pollfd fds[3] = {{client, 0, 0}, {upstream, 0, 0}, {stop_fd_.get(), POLLIN, 0}};
      for (Direction* d : {&up, &down}) {
        if (d->flushed() && !d->eof) (d->from == client ? fds[0] : fds[1]).events |= POLLIN;
        if (!d->flushed()) (d->to == client ? fds[0] : fds[1]).events |= POLLOUT;
      }
      const int rc = ::poll(fds, 3, millis_until(idle_deadline));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return end(session, "poll: " + errno_text(errno));
      if (fds[2].revents != 0 || stopping_) return end(session, "proxy stopped");
      if (rc == 0) {
        if (Clock::now() >= idle_deadline) return end(session, "idle timeout");
        continue;
      }
      bool moved = false;
      for (Direction* d : {&up, &down}) {
        const short from_events = (d->from == client ? fds[0] : fds[1]).revents;
        const short to_events = (d->to == client ? fds[0] : fds[1]).revents;
        if (!d->flushed() && (to_events & (POLLOUT | POLLERR | POLLHUP))) {
          const auto sent = ::send(d->to, d->pending.data() + d->offset, d->pending.size() - d->offset, MSG_NOSIGNAL);
          if (sent < 0 && errno != EAGAIN && errno != EINTR) return end(session, "send failed: " + errno_text(errno));
          if (sent > 0) {
            d->offset += static_cast<std::size_t>(sent);
            moved = true;
          }
        }
        if (d->flushed() && !d->eof && (from_events & (POLLIN | POLLERR | POLLHUP))) {
          const auto budget = take_budget(kChunk);
          if (budget == 0) return end(session, "byte limit reached");
          d->pending.resize(budget);
          d->offset = 0;
          const auto got = ::recv(d->from, d->pending.data(), budget, 0);
          if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            give_back(budget);
            d->pending.clear();
            continue;
          }
          if (got < 0) {
            give_back(budget);
            return end(session, "receive failed: " + errno_text(errno));
          }
          give_back(budget - static_cast<std::uint64_t>(got));
          d->pending.resize(static_cast<std::size_t>(got));
          *d->count += static_cast<std::uint64_t>(got);
          if (got == 0) d->eof = true;
          moved = true;
        }
      }
      if (moved) idle_deadline = Clock::now() + options_.idle_timeout;
    }
  }

  void end(Session& session, std::string reason) { session.event.reason = std::move(reason); }

  void refuse_silently(Session& session, std::string reason) {
    ++refused_;
    session.event.allowed = false;
    session.event.reason = std::move(reason);
  }

  // Sends the answer, then reads a little of what the client still sends so that
  // closing does not reset the connection before the answer is read.
  void answer(Session& session, const Answer& answer) {
    refuse_silently(session, answer.reason);
    const std::string body = "sandci egress: " + answer.reason + "\n";
    const std::string text = "HTTP/1.1 " + std::to_string(answer.status) + " " + answer.phrase +
                             "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    const int fd = session.client.get();
    const auto deadline = Clock::now() + std::min<std::chrono::seconds>(options_.header_timeout, std::chrono::seconds(5));
    std::size_t offset = 0;
    while (offset < text.size() && wait_for(fd, POLLOUT, deadline) == Wait::ready) {
      const auto sent = ::send(fd, text.data() + offset, text.size() - offset, MSG_NOSIGNAL);
      if (sent < 0 && errno != EAGAIN && errno != EINTR) return;
      if (sent > 0) offset += static_cast<std::size_t>(sent);
    }
    ::shutdown(fd, SHUT_WR);
    char sink[4096];
    std::size_t drained = 0;
    while (drained < 64 * 1024 && wait_for(fd, POLLIN, deadline) == Wait::ready) {
      const auto got = ::recv(fd, sink, sizeof sink, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) break;
      drained += static_cast<std::size_t>(got);
    }
  }

  static constexpr std::size_t kRefusalMargin = 16;
  static constexpr std::size_t kChunk = 64 * 1024;

  Fd listen_fd_;
  Fd netns_fd_;
  Fd stop_fd_;
  EgressGrant grant_;
  EgressProxyOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<int> refused_{0};
  std::atomic<int> active_{0};
  std::list<Connection> connections_;  // the acceptor's only (then the destructor's)
  std::thread acceptor_;
};

EgressProxy::EgressProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EgressProxy::~EgressProxy() = default;

std::uint64_t EgressProxy::bytes() const { return impl_->bytes(); }
int EgressProxy::refused() const { return impl_->refused(); }

std::expected<std::unique_ptr<EgressProxy>, std::string> EgressProxy::start(int listen_fd, EgressGrant grant,
                                                                             EgressProxyOptions options) {
  Fd listener(listen_fd);
  int accepting = 0;
  socklen_t length = sizeof accepting;
  if (listen_fd < 0 || ::getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0 || !accepting)
    return std::unexpected("egress proxy: fd " + std::to_string(listen_fd) + " is not a listening socket");
  if (grant.max_connections < 1) return std::unexpected("egress proxy: max_connections must be at least 1");
  if (grant.ports.empty()) return std::unexpected("egress proxy: the grant has no port");
  ::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  Fd netns;
  if (!options.outbound_netns.empty()) {
    netns.reset(::open(options.outbound_netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns)
      return std::unexpected("egress proxy: cannot open network namespace " + options.outbound_netns + ": " +
                             errno_text(errno));
    // Proves now, not at the first connection, that setns works here.
    std::string error;
    std::thread([&] {
      if (::setns(netns.get(), CLONE_NEWNET) != 0) error = errno_text(errno);
    }).join();
    if (!error.empty())
      return std::unexpected("egress proxy: cannot enter network namespace " + options.outbound_netns + ": " + error);
  }
  Fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return std::unexpected("egress proxy: eventfd: " + errno_text(errno));
  auto impl = std::make_unique<Impl>(std::move(listener), std::move(netns), std::move(stop), std::move(grant),
                                     std::move(options));
  impl->run();
  return std::unique_ptr<EgressProxy>(new EgressProxy(std::move(impl)));
}

}  // namespace sandci::egress
