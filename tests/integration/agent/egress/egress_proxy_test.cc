#include "agent/egress/egress_proxy.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "integration/agent/egress/egress_test_support.h"
#include "support/test_ca.h"

namespace sandci::egress {
namespace {

using namespace sandci::egress::testing;

// Names the tests ask for, and where the hosts file sends them. Every name the grant
// lists except other.example.test; the internal ones are granted on purpose, to show
// the address check stops them whatever the grant says.
constexpr const char* kHostsFile =
    "198.51.100.2 outside.example.test secure.example.test other.example.test a.wild.example.test\n"
    "127.0.0.1    loop.example.test\n"
    "fd12:3456::1 private.example.test\n"
    "169.254.169.254 metadata.example.test\n"
    "198.51.100.1 self.example.test\n"
    "::ffff:127.0.0.1 mapped.example.test\n"
    "::1          loop6.example.test\n"
    "100.64.1.1   cgnat.example.test\n"
    "198.51.100.2 mixed.example.test\n"
    "127.0.0.2    mixed.example.test\n";

// Namespaces, outside servers, CA and hosts file: made once for the suite (they are
// slow to make), torn down after it even when a test fails.
class World {
 public:
  World() : dir_(std::filesystem::temp_directory_path() / ("sandci-egress-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    ca_files_ = sandci::testing::write_test_ca(dir_, {"secure.example.test"});
    std::ofstream(hosts_file()) << kHostsFile;
    server_ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(server_ctx_, ca_files_.server_cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(server_ctx_, ca_files_.server_key.c_str(), SSL_FILETYPE_PEM) != 1)
      throw std::runtime_error("cannot load the test server certificate");
    http_ = std::make_unique<OutsideServer>(namespaces_.outside_path(), 80);
    other_port_ = std::make_unique<OutsideServer>(namespaces_.outside_path(), 8080);
    https_ = std::make_unique<OutsideServer>(namespaces_.outside_path(), 443, server_ctx_);
  }
  ~World() {
    http_.reset();
    other_port_.reset();
    https_.reset();
    SSL_CTX_free(server_ctx_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string hosts_file() const { return (dir_ / "hosts").string(); }
  const sandci::testing::TestCaFiles& ca() const { return ca_files_; }
  std::string egress_netns() const { return namespaces_.egress_path(); }
  std::string outside_netns() const { return namespaces_.outside_path(); }
  int http_requests() const { return http_->requests(); }

 private:
  std::filesystem::path dir_;
  TestNamespaces namespaces_;
  sandci::testing::TestCaFiles ca_files_;
  SSL_CTX* server_ctx_ = nullptr;
  std::unique_ptr<OutsideServer> http_, other_port_, https_;
};

// Events the proxy reported, waited for without sleeping.
class Events {
 public:
  void add(const EgressEvent& event) {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
    changed_.notify_all();
  }
  // Waits until `count` events have arrived (or 60 s, a hung proxy); returns them all.
  std::vector<EgressEvent> wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(60), [&] { return events_.size() >= count; });
    return events_;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<EgressEvent> events_;
};

struct Response {
  std::string head;
  std::string body;
  int status() const { return head.size() > 12 ? std::stoi(head.substr(9, 3)) : 0; }
};

class EgressProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to make network namespaces";
    std::signal(SIGPIPE, SIG_IGN);  // a TLS write to a closed peer must fail, not kill the test
    world_ = new World();
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }
  void TearDown() override { proxy_.reset(); }

  EgressGrant grant(std::optional<std::uint64_t> max_bytes = std::nullopt, int max_connections = 32,
                    std::vector<std::uint16_t> ports = {80, 443}) {
    auto made = make_grant({"outside.example.test", "secure.example.test", "*.wild.example.test", "loop.example.test",
                            "private.example.test", "metadata.example.test", "self.example.test",
                            "mapped.example.test", "loop6.example.test", "cgnat.example.test", "mixed.example.test"},
                           ports, max_bytes, max_connections);
    EXPECT_TRUE(made.has_value()) << made.error();
    return *made;
  }

  void start(EgressGrant grant, std::chrono::seconds header_timeout = std::chrono::seconds(10)) {
    const int fd = listen_in("", "127.0.0.1", 0);
    port_ = local_port(fd);
    EgressProxyOptions options;
    options.hosts_file = world_->hosts_file();
    options.outbound_netns = world_->egress_netns();
    options.header_timeout = header_timeout;
    options.on_event = [this](const EgressEvent& event) { events_.add(event); };
    auto proxy = EgressProxy::start(fd, std::move(grant), std::move(options));
    ASSERT_TRUE(proxy.has_value()) << proxy.error();
    proxy_ = std::move(*proxy);
  }

  // Sends `request` raw and reads the answer to its end.
  Response exchange(const std::string& request) {
    Stream stream(connect_to(port_), nullptr);
    stream.write(request);
    Response response{stream.read_head(), {}};
    char buffer[65536];
    for (long got; (got = stream.read(buffer, sizeof buffer)) > 0;) response.body.append(buffer, got);
    return response;
  }

  Response get(const std::string& url) { return exchange("GET " + url + " HTTP/1.1\r\nHost: x\r\n\r\n"); }

  // Opens a CONNECT tunnel; the stream is positioned after the proxy's answer head.
  std::pair<std::unique_ptr<Stream>, std::string> connect_tunnel(const std::string& authority) {
    auto stream = std::make_unique<Stream>(connect_to(port_), nullptr);
    stream->write("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
    auto head = stream->read_head();
    return {std::move(stream), head};
  }

  static World* world_;
  std::uint16_t port_ = 0;
  Events events_;
  std::unique_ptr<EgressProxy> proxy_;
};

World* EgressProxyTest::world_ = nullptr;

TEST_F(EgressProxyTest, GrantedNameReachesThePlainHttpServer) {
  start(grant());
  const auto response = get("http://Outside.Example.Test/hello");
  EXPECT_EQ(response.status(), 200) << response.head;
  EXPECT_EQ(response.body, "hello from outside, host=Outside.Example.Test\n");
  const auto events = events_.wait_for(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].host, "outside.example.test");
  EXPECT_EQ(events[0].port, 80);
  EXPECT_TRUE(events[0].allowed) << events[0].reason;
  EXPECT_GT(events[0].bytes_up, 0u);
  EXPECT_GE(events[0].bytes_down, response.head.size() + response.body.size());
  EXPECT_EQ(proxy_->refused(), 0);
  EXPECT_EQ(proxy_->bytes(), events[0].bytes_up + events[0].bytes_down);
}

TEST_F(EgressProxyTest, WildcardGrantReachesASubdomain) {
  start(grant());
  const auto response = get("http://a.wild.example.test/hello");
  EXPECT_EQ(response.status(), 200) << response.head << response.body;
  EXPECT_EQ(response.body, "hello from outside, host=a.wild.example.test\n");
}

TEST_F(EgressProxyTest, ConnectTunnelCarriesTlsVerifiedAgainstTheTestCa) {
  start(grant());
  auto [tunnel, head] = connect_tunnel("secure.example.test:443");
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, world_->ca().ca_cert.c_str(), nullptr), 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_tlsext_host_name(ssl, "secure.example.test");
  SSL_set1_host(ssl, "secure.example.test");
  const int fd = ::dup(tunnel->fd());
  SSL_set_fd(ssl, fd);
  ASSERT_EQ(SSL_connect(ssl), 1) << "TLS through the tunnel failed";
  EXPECT_EQ(SSL_get_verify_result(ssl), X509_V_OK);
  Stream tls(fd, ssl);
  tls.write("GET /hello HTTP/1.1\r\nHost: secure.example.test\r\n\r\n");
  const auto response_head = tls.read_head();
  std::string body;
  char buffer[1024];
  for (long got; (got = tls.read(buffer, sizeof buffer)) > 0;) body.append(buffer, got);
  SSL_CTX_free(ctx);
  EXPECT_TRUE(response_head.starts_with("HTTP/1.1 200")) << response_head;
  EXPECT_EQ(body, "hello from outside, host=secure.example.test\n");
}

TEST_F(EgressProxyTest, NameNotGrantedIsRefusedWith403SayingWhy) {
  start(grant());
  const int before = world_->http_requests();
  const auto response = get("http://other.example.test/hello");
  EXPECT_EQ(response.status(), 403) << response.head;
  EXPECT_EQ(response.body, "sandci egress: other.example.test not granted for this repository\n");
  auto [tunnel, head] = connect_tunnel("other.example.test:443");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << head;
  tunnel.reset();  // else the proxy waits a moment for the client to close after its answer
  const auto events = events_.wait_for(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].allowed);
  EXPECT_EQ(events[0].reason, "other.example.test not granted for this repository");
  EXPECT_EQ(proxy_->refused(), 2);
  EXPECT_EQ(world_->http_requests(), before);  // the name does reach the server; the proxy did not go
}

TEST_F(EgressProxyTest, GrantedNamesResolvingToInternalAddressesAreRefused) {
  start(grant());
  struct Case {
    const char* host;
    const char* why;
  };
  const Case cases[] = {
      {"loop.example.test", "resolves to 127.0.0.1 (loopback)"},
      {"private.example.test", "resolves to fd12:3456::1 (unique local (private))"},
      {"metadata.example.test", "resolves to 169.254.169.254 (link-local (cloud metadata))"},
      {"self.example.test", "resolves to 198.51.100.1, an address of the proxy's own network namespace"},
      {"mapped.example.test", "resolves to ::ffff:127.0.0.1 (v4-mapped loopback)"},
      {"loop6.example.test", "resolves to ::1 (loopback)"},
      {"cgnat.example.test", "resolves to 100.64.1.1 (carrier-grade NAT)"},
      {"mixed.example.test", "resolves to 127.0.0.2 (loopback)"},
  };
  for (const auto& c : cases) {
    const auto response = get(std::string("http://") + c.host + "/hello");
    EXPECT_EQ(response.status(), 403) << c.host;
    EXPECT_NE(response.body.find(c.why), std::string::npos) << c.host << ": " << response.body;
    auto [tunnel, head] = connect_tunnel(std::string(c.host) + ":443");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << c.host << ": " << head;
  }
  EXPECT_EQ(proxy_->refused(), 2 * static_cast<int>(std::size(cases)));
  EXPECT_EQ(proxy_->bytes(), 0u);
}

TEST_F(EgressProxyTest, RawIpAddressesAreRefusedInEveryForm) {
  start(grant());
  for (const char* url : {"http://198.51.100.2/hello", "http://[::1]/", "http://2130706433/", "http://0x7f.1/",
                          "http://198.51.100.2./hello"}) {
    const auto response = get(url);
    EXPECT_EQ(response.status(), 403) << url;
    EXPECT_NE(response.body.find("raw IP address"), std::string::npos) << url << ": " << response.body;
  }
  for (const char* authority : {"198.51.100.2:443", "[::1]:443", "[::ffff:198.51.100.2]:443"}) {
    auto [tunnel, head] = connect_tunnel(authority);
    EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << authority << ": " << head;
  }
}

TEST_F(EgressProxyTest, PortNotGrantedIsRefused) {
  start(grant());
  const auto response = get("http://outside.example.test:8080/hello");
  EXPECT_EQ(response.status(), 403);
  EXPECT_EQ(response.body, "sandci egress: port 8080 not granted for this repository (outside.example.test)\n");
  auto [tunnel, head] = connect_tunnel("outside.example.test:22");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 403")) << head;
  // The same port, once granted, goes through: it was the grant that refused it.
  proxy_.reset();
  start(grant(std::nullopt, 32, {8080}));
  EXPECT_EQ(get("http://outside.example.test:8080/hello").status(), 200);
}

TEST_F(EgressProxyTest, UnknownNameIs502) {
  start(grant());
  const auto response = get("http://nowhere.wild.example.test/");
  EXPECT_EQ(response.status(), 502);
  EXPECT_NE(response.body.find("cannot resolve nowhere.wild.example.test"), std::string::npos) << response.body;
}

TEST_F(EgressProxyTest, MalformedRequestsAre400AndOversizedHeads431) {
  start(grant());
  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GET /hello HTTP/1.1\r\nHost: outside.example.test\r\n\r\n", 400},
      {"GET https://outside.example.test/ HTTP/1.1\r\n\r\n", 400},
      {"NOT A REQUEST AT ALL\r\n\r\n", 400},
      {"GET http://outside.example.test/ HTTP/1.1\r\nbroken header\r\n\r\n", 400},
      {"GET http://outside.example.test/ HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n", 431},
  };
  for (const auto& c : cases) {
    const auto response = exchange(c.request);
    EXPECT_EQ(response.status(), c.status) << c.request.substr(0, 60) << " -> " << response.head;
    EXPECT_TRUE(response.body.starts_with("sandci egress: ")) << response.body;
  }
  EXPECT_EQ(proxy_->refused(), static_cast<int>(std::size(cases)));
}

TEST_F(EgressProxyTest, SlowClientIsDroppedAndDoesNotHoldOthers) {
  start(grant(), std::chrono::seconds(1));
  Stream slow(connect_to(port_), nullptr);
  slow.write("GET http://outside.example.test/hello HTTP/1.1\r\nHost: outside");  // never finished
  // Served while the slow one waits.
  EXPECT_EQ(get("http://outside.example.test/hello").status(), 200);
  char c;
  EXPECT_EQ(slow.read(&c, 1), 0) << "the proxy should close the connection without answering";
  const auto events = events_.wait_for(2);
  ASSERT_EQ(events.size(), 2u);
  const auto& dropped = events[0].allowed ? events[1] : events[0];
  EXPECT_FALSE(dropped.allowed);
  EXPECT_EQ(dropped.reason, "request head not received within the header timeout");
}

TEST_F(EgressProxyTest, ByteLimitStopsTheDownloadAndRefusesLaterConnections) {
  start(grant(100'000));
  const auto response = get("http://outside.example.test/bytes/1000000");
  EXPECT_EQ(response.status(), 200);
  EXPECT_LT(response.body.size(), 100'000u);
  auto events = events_.wait_for(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].allowed);
  EXPECT_EQ(events[0].reason, "byte limit reached");
  EXPECT_EQ(proxy_->bytes(), 100'000u);
  const auto later = get("http://outside.example.test/hello");
  EXPECT_EQ(later.status(), 429);
  EXPECT_EQ(later.body, "sandci egress: byte limit (100000 bytes) reached for this job\n");
}

TEST_F(EgressProxyTest, ConnectionLimitAnswers429UntilOneCloses) {
  start(grant(std::nullopt, 2));
  auto [first, first_head] = connect_tunnel("secure.example.test:443");
  auto [second, second_head] = connect_tunnel("secure.example.test:443");
  ASSERT_TRUE(first_head.starts_with("HTTP/1.1 200")) << first_head;
  ASSERT_TRUE(second_head.starts_with("HTTP/1.1 200")) << second_head;
  const auto third = get("http://outside.example.test/hello");
  EXPECT_EQ(third.status(), 429);
  EXPECT_EQ(third.body, "sandci egress: connection limit (2 at once) reached for this job\n");
  first.reset();  // the proxy sees the end, closes its side, reports it: a slot is free
  events_.wait_for(2);
  EXPECT_EQ(get("http://outside.example.test/hello").status(), 200);
}

TEST_F(EgressProxyTest, LargeDownloadArrivesWhole) {
  start(grant());
  constexpr std::uint64_t kSize = 64ull * 1024 * 1024;
  Stream stream(connect_to(port_), nullptr);
  stream.write("GET http://outside.example.test/bytes/" + std::to_string(kSize) + " HTTP/1.1\r\n\r\n");
  const auto head = stream.read_head();
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  std::uint64_t received = 0, wrong = 0;
  std::vector<char> buffer(256 * 1024);
  for (long got; (got = stream.read(buffer.data(), buffer.size())) > 0;) {
    for (long i = 0; i < got; ++i) wrong += buffer[i] != pattern_byte(received + i);
    received += got;
  }
  EXPECT_EQ(received, kSize);
  EXPECT_EQ(wrong, 0u);
  const auto events = events_.wait_for(1);
  EXPECT_GE(events.at(0).bytes_down, kSize);
}

TEST_F(EgressProxyTest, ManySmallRequestsAreEachServedAndReportedOnce) {
  start(grant());
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        const auto response = get("http://outside.example.test/bytes/1000");
        ok += response.status() == 200 && response.body.size() == 1000;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok, kThreads * kEach);
  const auto events = events_.wait_for(kThreads * kEach);
  EXPECT_EQ(events.size(), static_cast<std::size_t>(kThreads * kEach));
  proxy_.reset();
  EXPECT_EQ(events_.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_F(EgressProxyTest, StoppingClosesOpenTunnelsAndReportsThemBeforeReturning) {
  start(grant());
  auto [tunnel, head] = connect_tunnel("secure.example.test:443");
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  proxy_.reset();
  EXPECT_EQ(events_.size(), 1u);
  char c;
  EXPECT_EQ(tunnel->read(&c, 1), 0);
}

TEST(EgressProxyStart, RefusesWhatItCannotServeOn) {
  const int not_listening = ::socket(AF_INET, SOCK_STREAM, 0);
  auto made = make_grant({"a.example.test"}, {}, std::nullopt, 1);
  ASSERT_TRUE(made.has_value());
  auto proxy = EgressProxy::start(not_listening, *made, {});
  ASSERT_FALSE(proxy.has_value());
  EXPECT_NE(proxy.error().find("not a listening socket"), std::string::npos) << proxy.error();
  EgressProxyOptions options;
  options.outbound_netns = "/run/netns/sandci-no-such-namespace";
  auto bad_netns = EgressProxy::start(listen_in("", "127.0.0.1", 0), *made, options);
  ASSERT_FALSE(bad_netns.has_value());
  EXPECT_NE(bad_netns.error().find("sandci-no-such-namespace"), std::string::npos) << bad_netns.error();
}

}  // namespace
}  // namespace sandci::egress
