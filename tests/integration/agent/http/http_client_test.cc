// HttpClient against HttpServer (plain and TLS with a throwaway CA) and against
// sockets that misbehave.
#include "agent/http/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/http/http_server.h"
#include "integration/agent/http/http_test_support.h"
#include "support/test_ca.h"

namespace sandci::agent::http {
namespace {

using namespace std::chrono_literals;
using testing::SilentListener;
using testing::TempDir;

std::unique_ptr<HttpServer> start_server(HttpServerOptions options, Handler handler) {
  auto server = HttpServer::start(std::move(options), std::move(handler));
  if (!server) throw std::runtime_error(server.error());
  return std::move(*server);
}

Handler hello_handler() {
  return [](HttpRequest request, Responder respond) {
    respond(HttpResponse::text(200, "hello " + request.method));
  };
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    files_ = sandci::testing::write_test_ca(dir_.path());
    server_ = start_server({.tls = TlsFiles{files_.server_cert, files_.server_key}}, hello_handler());
  }

  std::string https_url(const std::string& host) const {
    return "https://" + host + ":" + std::to_string(server_->port()) + "/x";
  }

  TempDir dir_;
  sandci::testing::TestCaFiles files_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpsTest, ClientTrustingTheTestCaSucceedsByIpAndByName) {
  HttpClient client({.ca_file = files_.ca_cert});
  for (const char* host : {"127.0.0.1", "localhost"}) {
    const auto response = client.send({.method = "POST", .url = https_url(host), .body = "b"});
    ASSERT_TRUE(response) << response.error();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "hello POST");
  }
}

TEST_F(HttpsTest, ClientWithTheSystemStoreRefusesTheTestCa) {
  const auto response = HttpClient{}.send({.url = https_url("127.0.0.1")});
  ASSERT_FALSE(response);
  EXPECT_TRUE(response.error().starts_with(https_url("127.0.0.1") + ": certificate verify failed (")) << response.error();
}

TEST_F(HttpsTest, CertificateForAnotherNameIsRefused) {
  TempDir other;
  sandci::testing::TestCa ca;
  ca.write_ca_cert(other.path() / "ca.pem");
  ca.issue_server_cert({"forge.example"}, other.path() / "server.pem", other.path() / "server.key");
  auto server = start_server({.tls = TlsFiles{other.path() / "server.pem", other.path() / "server.key"}},
                             hello_handler());
  HttpClient client({.ca_file = other.path() / "ca.pem"});
  const auto port = std::to_string(server->port());

  const auto by_ip = client.send({.url = "https://127.0.0.1:" + port + "/"});
  ASSERT_FALSE(by_ip);
  EXPECT_TRUE(contains(by_ip.error(), "certificate verify failed (IP address mismatch)")) << by_ip.error();

  const auto by_name = client.send({.url = "https://localhost:" + port + "/"});
  ASSERT_FALSE(by_name);
  EXPECT_TRUE(contains(by_name.error(), "certificate verify failed (hostname mismatch)")) << by_name.error();
}

TEST_F(HttpsTest, PlainHttpToTheTlsPortFailsAndTheServerGoesOn) {
  const auto plain = HttpClient{}.send({.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/", .timeout = 3000ms});
  EXPECT_FALSE(plain);
  const auto response = HttpClient({.ca_file = files_.ca_cert}).send({.url = https_url("127.0.0.1")});
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpsTest, OneClientIsSafeToShareAcrossThreads) {
  const HttpClient client({.ca_file = files_.ca_cert});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        const auto response = client.send({.url = https_url("127.0.0.1")});
        if (response && response->status == 200 && response->body == "hello GET") ++ok;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 20);
}

TEST_F(HttpsTest, SilentClientIsDroppedAtTheHandshakeDeadline) {
  auto server = start_server(
      {.tls = TlsFiles{files_.server_cert, files_.server_key}, .header_timeout = 300ms}, hello_handler());
  testing::RawSocket silent(server->port());
  ASSERT_TRUE(silent.connected());
  bool closed = false;
  silent.read_until_closed(10s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(testing::eventually([&] { return server->open_connections() == 0; }));
}

TEST(HttpsServer, UnreadableCertificateIsAStartError) {
  TempDir dir;
  const auto server = HttpServer::start({.tls = TlsFiles{dir.path() / "missing.pem", dir.path() / "missing.key"}},
                                        hello_handler());
  ASSERT_FALSE(server);
  EXPECT_TRUE(contains(server.error(), "missing.pem")) << server.error();
}

TEST(HttpClient, UnreadableCaFileIsReportedBySend) {
  HttpClient client({.ca_file = "/nonexistent/ca.pem"});
  const auto response = client.send({.url = "https://127.0.0.1:1/"});
  ASSERT_FALSE(response);
  EXPECT_TRUE(contains(response.error(), "/nonexistent/ca.pem")) << response.error();
}

TEST(HttpClient, TimesOutAgainstASocketThatNeverAnswers) {
  SilentListener silent;
  const auto url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/x";
  const auto response = HttpClient{}.send({.url = url, .timeout = 300ms});
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), url + ": timed out after 300 ms");
}

TEST(HttpClient, TlsHandshakeAgainstASilentSocketTimesOut) {
  SilentListener silent;
  const auto url = "https://127.0.0.1:" + std::to_string(silent.port()) + "/x";
  const auto response = HttpClient{}.send({.url = url, .timeout = 300ms});
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), url + ": timed out after 300 ms");
}

TEST(HttpClient, ConnectionRefusedIsNamed) {
  std::uint16_t port = 0;
  {
    SilentListener closed_again;  // a port that was free a moment ago
    port = closed_again.port();
  }
  const auto url = "http://127.0.0.1:" + std::to_string(port) + "/";
  const auto response = HttpClient{}.send({.url = url});
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), url + ": connection refused");
}

TEST(HttpClient, ResponseOverTheLimitIsRefused) {
  auto server = start_server({}, [](HttpRequest, Responder respond) {
    respond(HttpResponse::text(200, std::string(5000, 'r')));
  });
  const auto url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  const auto refused = HttpClient({.max_response_bytes = 4999}).send({.url = url});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), url + ": response body over 4999 bytes");
  const auto fits = HttpClient({.max_response_bytes = 5000}).send({.url = url});
  ASSERT_TRUE(fits) << fits.error();
  EXPECT_EQ(fits->body.size(), 5000u);
}

TEST(HttpClient, ErrorsNeverCarryHeaderValuesOrTheQuery) {
  std::uint16_t port = 0;
  {
    SilentListener closed_again;
    port = closed_again.port();
  }
  ClientRequest request{.url = "http://127.0.0.1:" + std::to_string(port) + "/x?access_token=query-secret"};
  request.headers.add("Authorization", "token header-secret");
  auto refused = HttpClient{}.send(request);
  ASSERT_FALSE(refused);
  EXPECT_FALSE(contains(refused.error(), "secret")) << refused.error();

  request.headers.add("X-Bad", "line\r\nbreak-secret");
  const auto bad = HttpClient{}.send(request);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.error(), "X-Bad")) << bad.error();
  EXPECT_FALSE(contains(bad.error(), "secret")) << bad.error();
}

TEST(HttpClient, SendsHostAndUserAgentAndReadsAllHeaders) {
  HttpRequest seen;
  std::mutex seen_mutex;  // the handler thread writes it, the test thread reads it
  auto server = start_server({}, [&](HttpRequest request, Responder respond) {
    {
      std::lock_guard lock(seen_mutex);
      seen = std::move(request);
    }
    auto response = HttpResponse::empty(204);
    response.headers.add("X-Multi", "1");
    response.headers.add("X-Multi", "2");
    respond(std::move(response));
  });
  const auto port = std::to_string(server->port());
  const auto response = HttpClient{}.send({.method = "PUT", .url = "http://127.0.0.1:" + port + "/p?q=1", .body = "{}"});
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 204);
  EXPECT_EQ(response->headers.get_all("x-multi"), (std::vector<std::string>{"1", "2"}));
  std::lock_guard lock(seen_mutex);
  EXPECT_EQ(seen.method, "PUT");
  EXPECT_EQ(seen.target, "/p?q=1");
  EXPECT_EQ(seen.body, "{}");
  EXPECT_EQ(seen.headers.get("Host"), "127.0.0.1:" + port);
  EXPECT_EQ(seen.headers.get("User-Agent"), "sandci");
}

TEST(HttpClient, BadUrlIsTheParsersError) {
  const auto response = HttpClient{}.send({.url = "ftp://example.com/"});
  ASSERT_FALSE(response);
  EXPECT_TRUE(contains(response.error(), "unsupported scheme")) << response.error();
}

}  // namespace
}  // namespace sandci::agent::http
