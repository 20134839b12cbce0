#pragma once
// What the egress proxy's integration tests stand on, all made by the test itself:
// two network namespaces joined by a veth pair, "egress" (198.51.100.1/24, where the
// proxy makes its outbound sockets) and "outside" (198.51.100.2/24, holding a plain
// HTTP server and a TLS server), a hosts file naming them, and small blocking
// clients. 198.51.100.0/24 is a documentation range: no real host answers there.
// Everything is torn down by destructors, so a failing test leaves nothing behind.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace sandci::egress::testing {

inline void run_or_throw(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("command failed: " + command);
}

// Byte i of every test download; period 251 so a lost or repeated block shows.
inline char pattern_byte(std::uint64_t i) { return static_cast<char>(i % 251); }

// Two namespaces "sandci-eg-<pid>" and "sandci-out-<pid>" and the veth pair between them.
class TestNamespaces {
 public:
  TestNamespaces() {
    const auto pid = std::to_string(::getpid());
    egress_ = "sandci-eg-" + pid;
    outside_ = "sandci-out-" + pid;
    const std::string egress_if = "sce" + pid, outside_if = "sco" + pid;  // <= 15 characters
    remove();
    try {
      run_or_throw("ip netns add " + egress_);
      run_or_throw("ip netns add " + outside_);
      run_or_throw("ip link add " + egress_if + " netns " + egress_ + " type veth peer name " + outside_if + " netns " +
                   outside_);
      run_or_throw("ip -n " + egress_ + " addr add 198.51.100.1/24 dev " + egress_if);
      run_or_throw("ip -n " + outside_ + " addr add 198.51.100.2/24 dev " + outside_if);
      for (const auto& [ns, dev] : {std::pair{egress_, egress_if}, std::pair{outside_, outside_if}}) {
        run_or_throw("ip -n " + ns + " link set lo up");
        run_or_throw("ip -n " + ns + " link set " + dev + " up");
      }
    } catch (...) {
      remove();
      throw;
    }
  }
  ~TestNamespaces() { remove(); }
  TestNamespaces(const TestNamespaces&) = delete;
  TestNamespaces& operator=(const TestNamespaces&) = delete;

  std::string egress_path() const { return "/run/netns/" + egress_; }
  std::string outside_path() const { return "/run/netns/" + outside_; }

 private:
  void remove() {
    // Deleting a namespace also deletes the veth end inside it, and so its peer.
    for (const auto& ns : {egress_, outside_})
      if (std::filesystem::exists("/run/netns/" + ns))
        [[maybe_unused]] const int rc = std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
  }
  std::string egress_, outside_;
};

// A TCP listening socket on address:port made inside the namespace at `netns_path`
// (a thread enters it, makes the socket and leaves with it: sockets keep the
// namespace they were made in). Empty path: this process's namespace.
inline int listen_in(const std::string& netns_path, const std::string& address, std::uint16_t port) {
  int result = -1;
  std::string error;
  std::thread([&] {
    if (!netns_path.empty()) {
      const int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        error = "setns " + netns_path + ": " + std::strerror(errno);
        if (ns >= 0) ::close(ns);
        return;
      }
      ::close(ns);
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    ::inet_pton(AF_INET, address.c_str(), &in.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 || ::listen(fd, 128) != 0) {
      error = "bind/listen " + address + ":" + std::to_string(port) + ": " + std::strerror(errno);
      ::close(fd);
      return;
    }
    result = fd;
  }).join();
  if (result < 0) throw std::runtime_error(error);
  return result;
}

inline std::uint16_t local_port(int fd) {
  sockaddr_in in{};
  socklen_t length = sizeof in;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &length);
  return ntohs(in.sin_port);
}

inline void set_timeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A connection's byte stream, plain or TLS.
class Stream {
 public:
  Stream(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Stream() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  long read(char* data, std::size_t size) {
    if (ssl_) {
      const int got = SSL_read(ssl_, data, static_cast<int>(size));
      return got > 0 ? got : 0;
    }
    return ::recv(fd_, data, size, 0);
  }
  bool write(std::string_view data) {
    while (!data.empty()) {
      const long sent = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                             : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
  }
  // The head: bytes up to and including the first blank line.
  std::string read_head() {
    std::string head;
    char c;
    while (!head.ends_with("\r\n\r\n") && read(&c, 1) == 1) head += c;
    return head;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  SSL* ssl_;
};

// The "outside" servers: plain HTTP on 198.51.100.2:80 and :8080, TLS on :443
// (certificate for secure.example.test). One thread per connection, one request each.
//   GET /hello       -> "hello from outside, host=<Host header>\n"
//   GET /bytes/N     -> N bytes of pattern_byte
class OutsideServer {
 public:
  OutsideServer(const std::string& netns_path, std::uint16_t port, SSL_CTX* tls = nullptr)
      : listen_fd_(listen_in(netns_path, "198.51.100.2", port)), tls_(tls) {
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~OutsideServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& thread : threads_) thread.join();
    ::close(listen_fd_);
  }
  int requests() const { return requests_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mutex_);
      open_fds_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    set_timeouts(fd, 30);
    SSL* ssl = nullptr;
    if (tls_) {
      ssl = SSL_new(tls_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) {
        SSL_free(ssl);
        forget(fd);
        ::close(fd);
        return;
      }
    }
    {
      Stream stream(fd, ssl);
      const std::string head = stream.read_head();
      if (!head.empty()) {
        ++requests_;
        respond(stream, head);
      }
      if (ssl) SSL_shutdown(ssl);
      forget(fd);
    }
  }

  void forget(int fd) {
    std::lock_guard lock(mutex_);
    std::erase(open_fds_, fd);
  }

  static void respond(Stream& stream, const std::string& head) {
    const auto path_start = head.find(' ') + 1;
    const std::string path = head.substr(path_start, head.find(' ', path_start) - path_start);
    if (path.starts_with("/bytes/")) {
      const std::uint64_t size = std::stoull(path.substr(7));
      if (!stream.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\nConnection: close\r\n\r\n"))
        return;
      std::string block(251 * 256, '\0');
      for (std::size_t i = 0; i < block.size(); ++i) block[i] = pattern_byte(i);
      for (std::uint64_t sent = 0; sent < size;) {
        const auto n = std::min<std::uint64_t>(block.size(), size - sent);
        if (!stream.write(std::string_view(block).substr(0, n))) return;
        sent += n;
      }
      return;
    }
    std::string host;
    if (const auto at = head.find("\r\nHost: "); at != std::string::npos)
      host = head.substr(at + 8, head.find("\r\n", at + 8) - at - 8);
    const std::string body = "hello from outside, host=" + host + "\n";
    stream.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
  }

  int listen_fd_;
  SSL_CTX* tls_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::list<int> open_fds_;
  std::list<std::thread> threads_;
  std::thread acceptor_;
};

inline int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("connect to the proxy: ") + std::strerror(errno));
  }
  set_timeouts(fd, 30);
  return fd;
}

}  // namespace sandci::egress::testing
