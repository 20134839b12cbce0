#pragma once
// A small network world for the egress tests (issue 14), made entirely of
// namespaces this test process creates, so no traffic touches the machine's
// own network:
//
//   "outside" namespace  198.51.100.2  a plain HTTP server on :80 and a TLS
//                                      server on :443 (certificate of the test
//                                      CA for files.outside.test)
//        | veth
//   "agent" namespace    198.51.100.1  where the agent (the egress proxy's
//                                      outbound side) runs; a listener on
//                                      :8080 stands for the agent's own port
//
// plus a hosts file naming these addresses, and names that resolve where the
// proxy must never go (loopback, private, link-local, the agent itself).
// The destructor stops the servers and deletes both namespaces (and so the
// veth pair), also when a test failed. Needs root and `ip`.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_ca.h"

namespace sandci::testing {

class EgressWorld {
 public:
  static constexpr const char* kOutsideAddress = "198.51.100.2";
  static constexpr const char* kAgentAddress = "198.51.100.1";
  static constexpr int kAgentPort = 8080;
  static constexpr const char* kHelloBody = "hello from outside\n";
  static constexpr const char* kTlsBody = "hello over tls\n";

  EgressWorld() {
    static std::atomic<int> counter{0};
    const std::string base = "sandci-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    outside_ = base + "-out";
    agent_ = base + "-agent";
    std::string tmpl = (std::filesystem::temp_directory_path() / "sandci-egress-world-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    try {
      build();
    } catch (...) {
      tear_down();
      throw;
    }
  }
  ~EgressWorld() { tear_down(); }
  EgressWorld(const EgressWorld&) = delete;
  EgressWorld& operator=(const EgressWorld&) = delete;

  std::string outside_netns() const { return "/run/netns/" + outside_; }
  std::string agent_netns() const { return "/run/netns/" + agent_; }
  const std::string& agent_netns_name() const { return agent_; }
  // /etc/hosts format: files.outside.test and other.outside.test (the outside
  // server), loopback/private/metadata.outside.test, agent.outside.test.
  std::filesystem::path hosts_file() const { return dir_ / "hosts"; }
  std::filesystem::path ca_file() const { return ca_.ca_cert; }
  // Requests the servers answered, one "METHOD target" line each (HTTP only).
  std::vector<std::string> http_requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Connections the agent-port listener accepted (must stay 0).
  int agent_port_connections() const { return agent_connections_.load(); }
  // Connections the outside servers accepted, both ports.
  int outside_connections() const { return outside_connections_.load(); }

  // Extra plain-HTTP resources: path -> body.
  void serve(const std::string& path, const std::string& body) {
    std::lock_guard lock(mutex_);
    files_.emplace_back(path, body);
  }

 private:
  static void ip(const std::string& args) {
    const std::string command = "ip " + args + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("egress world: failed: " + command);
  }

  void build() {
    ip("netns add " + outside_);
    ip("netns add " + agent_);
    ip("link add o0 netns " + outside_ + " type veth peer name a0 netns " + agent_);
    ip("-n " + outside_ + " addr add " + kOutsideAddress + "/24 dev o0");
    ip("-n " + agent_ + " addr add " + kAgentAddress + "/24 dev a0");
    for (const auto& [ns, dev] : {std::pair{outside_, "o0"}, std::pair{agent_, "a0"}}) {
      ip("-n " + ns + " link set lo up");
      ip("-n " + ns + " link set " + std::string(dev) + " up");
    }
    std::ofstream(hosts_file()) << "# egress test world\n"
                                << kOutsideAddress << " files.outside.test\n"
                                << kOutsideAddress << " other.outside.test\n"
                                << "127.0.0.1 loopback.outside.test\n"
                                << "fd12:3456::2 private.outside.test\n"  // a unique-local (private) address
                                << "169.254.169.254 metadata.outside.test\n"
                                << kAgentAddress << " agent.outside.test\n";
    ca_ = write_test_ca(dir_, {"files.outside.test"});
    listeners_.push_back(listen_in(outside_netns(), kOutsideAddress, 80));
    listeners_.push_back(listen_in(outside_netns(), kOutsideAddress, 443));
    listeners_.push_back(listen_in(agent_netns(), kAgentAddress, kAgentPort));
    ssl_ = SSL_CTX_new(TLS_server_method());
    if (!ssl_ || SSL_CTX_use_certificate_chain_file(ssl_, ca_.server_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl_, ca_.server_key.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("egress world: TLS server setup failed");
    threads_.emplace_back([this] { serve_loop(listeners_[0], [this](int fd) { answer_http(fd); }); });
    threads_.emplace_back([this] { serve_loop(listeners_[1], [this](int fd) { answer_tls(fd); }); });
    threads_.emplace_back([this] {
      serve_loop(listeners_[2], [this](int fd) {
        ++agent_connections_;
        ::close(fd);
      });
    });
  }

  void tear_down() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (int fd : listeners_) ::close(fd);
    listeners_.clear();
    if (ssl_) SSL_CTX_free(ssl_);
    ssl_ = nullptr;
    for (const auto& ns : {outside_, agent_})
      if (std::filesystem::exists("/run/netns/" + ns)) (void)std::system(("ip netns delete " + ns).c_str());
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The socket is made by a thread inside the namespace; it stays there.
  static int listen_in(const std::string& netns, const char* address, int port) {
    int result = -1;
    std::thread([&] {
      int ns = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) return;
      ::close(ns);
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(port));
      ::inet_pton(AF_INET, address, &addr.sin_addr);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
        ::close(fd);
        return;
      }
      result = fd;
    }).join();
    if (result < 0) throw std::runtime_error("egress world: cannot listen on " + std::string(address));
    return result;
  }

  void serve_loop(int listener, const std::function<void(int)>& handle) {
    while (!stop_) {
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      handle(fd);
    }
  }

  std::string body_for(const std::string& target) {
    std::lock_guard lock(mutex_);
    for (const auto& [path, body] : files_)
      if (target == path) return body;
    return target == "/hello" ? kHelloBody : "";
  }

  void answer_http(int fd) {
    ++outside_connections_;
    std::string head;
    char buf[1024];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    const std::string line = head.substr(0, head.find("\r\n"));
    const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    const std::string target = sp1 == std::string::npos || sp2 <= sp1 ? "" : line.substr(sp1 + 1, sp2 - sp1 - 1);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(line.substr(0, sp1) + " " + target);
    }
    const std::string body = body_for(target);
    const std::string status = body.empty() ? "404 Not Found" : "200 OK";
    const std::string response = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
    (void)!::write(fd, response.data(), response.size());
    ::close(fd);
  }

  void answer_tls(int fd) {
    ++outside_connections_;
    SSL* ssl = SSL_new(ssl_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      char buf[1024];
      (void)SSL_read(ssl, buf, sizeof buf);
      const std::string response = std::string("HTTP/1.1 200 OK\r\nContent-Length: ") +
                                   std::to_string(std::strlen(kTlsBody)) + "\r\nConnection: close\r\n\r\n" + kTlsBody;
      SSL_write(ssl, response.data(), static_cast<int>(response.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(fd);
  }

  std::string outside_, agent_;
  std::filesystem::path dir_;
  TestCaFiles ca_;
  SSL_CTX* ssl_ = nullptr;
  std::vector<int> listeners_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> agent_connections_{0}, outside_connections_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::vector<std::pair<std::string, std::string>> files_;
};

}  // namespace sandci::testing
