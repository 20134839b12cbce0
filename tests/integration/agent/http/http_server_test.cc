// HttpServer over real loopback sockets, with HttpClient or raw bytes as the client.
#include "agent/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "agent/http/http_client.h"
#include "integration/agent/http/http_test_support.h"

namespace sandci::agent::http {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RawSocket;

std::unique_ptr<HttpServer> start_server(HttpServerOptions options, Handler handler) {
  auto server = HttpServer::start(std::move(options), std::move(handler));
  if (!server) throw std::runtime_error(server.error());
  return std::move(*server);
}

// Answers "<method> <target>" with the body echoed in X-Echo-Body-Size and the body.
Handler echo_handler(std::atomic<int>* calls = nullptr) {
  return [calls](HttpRequest request, Responder respond) {
    if (calls) ++*calls;
    auto response = HttpResponse::text(200, request.method + " " + request.target + "\n" + request.body);
    response.headers.set("X-Remote", request.remote_address);
    if (auto v = request.headers.get("x-test")) response.headers.set("X-Test-Seen", *v);
    respond(std::move(response));
  };
}

std::string url(const HttpServer& server, const std::string& path = "/") {
  return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

std::expected<ClientResponse, std::string> get(const HttpServer& server, const std::string& path = "/") {
  return HttpClient{}.send({.method = "GET", .url = url(server, path)});
}

TEST(HttpServer, RoundTripThroughTheClient) {
  auto server = start_server({}, echo_handler());
  ASSERT_NE(server->port(), 0);
  ClientRequest request{.method = "POST", .url = url(*server, "/hooks/github?x=1"), .body = "payload"};
  request.headers.add("X-Test", "seen");
  const auto response = HttpClient{}.send(request);
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "POST /hooks/github?x=1\npayload");
  EXPECT_EQ(response->headers.get("x-test-seen"), "seen");
  EXPECT_EQ(response->headers.get("X-Remote"), "127.0.0.1");
  EXPECT_EQ(response->headers.get("Content-Type"), "text/plain; charset=utf-8");
}

TEST(HttpServer, KeepAliveServesTwoRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  auto server = start_server({}, echo_handler(&calls));
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.connected());
  ASSERT_TRUE(socket.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto first = socket.read_response();
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200")) << first;
  EXPECT_NE(first.find("GET /one"), std::string::npos);
  ASSERT_TRUE(socket.send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto second = socket.read_response();
  EXPECT_TRUE(second.starts_with("HTTP/1.1 200")) << second;
  EXPECT_NE(second.find("GET /two"), std::string::npos);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(server->open_connections(), 1u);
}

TEST(HttpServer, ConnectionCloseIsHonoured) {
  auto server = start_server({}, echo_handler());
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  bool closed = false;
  const auto reply = socket.read_until_closed(5s, &closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_TRUE(closed);
}

TEST(HttpServer, HeadAnswersHeadersWithoutBody) {
  auto server = start_server({}, echo_handler());
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const auto reply = socket.read_until_closed(5s);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_NE(reply.find("Content-Length: 8"), std::string::npos) << reply;  // "HEAD /x\n"
  EXPECT_TRUE(reply.ends_with("\r\n\r\n")) << reply;
}

TEST(HttpServer, ExpectContinueGetsOneHundredBeforeTheBody) {
  auto server = start_server({}, echo_handler());
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  const auto interim = socket.read_response();
  EXPECT_TRUE(interim.starts_with("HTTP/1.1 100 Continue")) << interim;
  ASSERT_TRUE(socket.send("body"));
  const auto reply = socket.read_response();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_TRUE(reply.ends_with("POST /\nbody")) << reply;
}

TEST(HttpServer, TooLargeContentLengthGets413WithoutCallingTheHandler) {
  std::atomic<int> calls{0};
  auto server = start_server({.max_body_bytes = 1000}, echo_handler(&calls));
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + std::string(200, 'a')));
  bool closed = false;
  const auto reply = socket.read_until_closed(5s, &closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
  EXPECT_TRUE(closed);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, BodyAtTheLimitIsAccepted) {
  auto server = start_server({.max_body_bytes = 1000}, echo_handler());
  const auto response =
      HttpClient{}.send({.method = "POST", .url = url(*server, "/"), .body = std::string(1000, 'b')});
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), std::string("POST /\n").size() + 1000);
}

TEST(HttpServer, TooLongChunkedBodyGets413) {
  std::atomic<int> calls{0};
  auto server = start_server({.max_body_bytes = 1000}, echo_handler(&calls));
  RawSocket socket(server->port());
  std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "190\r\n" + std::string(400, 'c') + "\r\n";  // 1600 bytes in all
  request += "0\r\n\r\n";
  ASSERT_TRUE(socket.send(request));
  bool closed = false;
  const auto reply = socket.read_until_closed(5s, &closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
  EXPECT_TRUE(closed);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, ChunkedBodyWithinTheLimitIsDechunked) {
  auto server = start_server({.max_body_bytes = 1000}, echo_handler());
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  const auto reply = socket.read_response();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_TRUE(reply.ends_with("POST /\nabcde")) << reply;
}

TEST(HttpServer, HeadersOverTheLimitGet431) {
  std::atomic<int> calls{0};
  auto server = start_server({.max_header_bytes = 4096}, echo_handler(&calls));
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'h') + "\r\n\r\n"));
  bool closed = false;
  const auto reply = socket.read_until_closed(5s, &closed);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply;
  EXPECT_TRUE(closed);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, MalformedRequestGets400AndTheServerGoesOn) {
  auto server = start_server({}, echo_handler());
  {
    RawSocket socket(server->port());
    ASSERT_TRUE(socket.send("GET / HTTP/1.1\r\nBad Header Line\r\n\r\n"));
    const auto reply = socket.read_until_closed(5s);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  }
  {
    RawSocket socket(server->port());
    ASSERT_TRUE(socket.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"));
    const auto reply = socket.read_until_closed(5s);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  }
  const auto response = get(*server);
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
}

TEST(HttpServer, SurvivesRandomGarbage) {
  auto server = start_server({.header_timeout = 1000ms}, echo_handler());
  std::mt19937 random(12345);
  for (int round = 0; round < 40; ++round) {
    RawSocket socket(server->port());
    std::string garbage(static_cast<std::size_t>(random() % 3000), '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    if (round % 2 == 0) garbage = "POST / HTTP/1.1\r\n" + garbage;  // get past the request line
    socket.send(garbage + "\r\n\r\n");
    bool closed = false;
    const auto reply = socket.read_until_closed(5s, &closed);
    EXPECT_TRUE(closed) << "round " << round;
    EXPECT_TRUE(reply.empty() || reply.starts_with("HTTP/1.1 4")) << "round " << round << ": " << reply;
  }
  const auto response = get(*server);
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
}

TEST(HttpServer, StalledHeaderIsDroppedWhileOthersAreServed) {
  std::vector<std::string> log;
  std::mutex log_mutex;
  HttpServerOptions options{.header_timeout = 300ms};
  options.log = [&](const std::string& line) {
    std::lock_guard lock(log_mutex);
    log.push_back(line);
  };
  auto server = start_server(options, echo_handler());
  RawSocket slow(server->port());
  ASSERT_TRUE(slow.send("GET / HTTP/1.1\r\nHost: x\r\nX-Half"));

  const auto response = get(*server);
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);

  bool closed = false;
  const auto reply = slow.read_until_closed(10s, &closed);
  EXPECT_TRUE(closed) << "the stalled client was not disconnected";
  EXPECT_TRUE(reply.empty()) << reply;
  EXPECT_TRUE(eventually([&] { return server->open_connections() == 0; }));
  std::lock_guard lock(log_mutex);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log.back().find("timed out reading the header"), std::string::npos) << log.back();
}

TEST(HttpServer, StalledBodyIsDropped) {
  std::atomic<int> calls{0};
  auto server = start_server({.body_timeout = 300ms}, echo_handler(&calls));
  RawSocket slow(server->port());
  ASSERT_TRUE(slow.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part"));
  bool closed = false;
  slow.read_until_closed(10s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(calls, 0);
}

TEST(HttpServer, IdleKeptAliveConnectionIsClosed) {
  auto server = start_server({.idle_timeout = 300ms}, echo_handler());
  RawSocket socket(server->port());
  ASSERT_TRUE(socket.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(socket.read_response().starts_with("HTTP/1.1 200"));
  bool closed = false;
  socket.read_until_closed(10s, &closed);
  EXPECT_TRUE(closed);
}

TEST(HttpServer, ConnectionsOverTheLimitAreRefusedUntilOthersClose) {
  auto server = start_server({.header_timeout = 60s, .max_connections = 3}, echo_handler());
  std::vector<std::unique_ptr<RawSocket>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<RawSocket>(server->port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  ASSERT_TRUE(eventually([&] { return server->open_connections() == 3; }));

  RawSocket extra(server->port());
  extra.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  const auto reply = extra.read_until_closed(5s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(reply.empty() || reply.starts_with("HTTP/1.1 503")) << reply;
  EXPECT_EQ(server->open_connections(), 3u);

  idle.clear();
  ASSERT_TRUE(eventually([&] { return server->open_connections() == 0; }));
  const auto response = get(*server);
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
}

TEST(HttpServer, ResponderCalledLaterFromAnotherThread) {
  std::vector<std::thread> workers;
  std::mutex workers_mutex;
  auto server = start_server({}, [&](HttpRequest request, Responder respond) {
    std::lock_guard lock(workers_mutex);
    workers.emplace_back([respond, body = request.body] {
      std::this_thread::sleep_for(50ms);
      respond(HttpResponse::json(202, "{\"got\":\"" + body + "\"}"));
      respond(HttpResponse::text(500, "a second answer is ignored"));
    });
  });
  const auto response = HttpClient{}.send({.method = "POST", .url = url(*server), .body = "x"});
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 202);
  EXPECT_EQ(response->body, "{\"got\":\"x\"}");
  EXPECT_EQ(response->headers.get("content-type"), "application/json");
  for (auto& t : workers) t.join();
}

TEST(HttpServer, HandlerThatNeverAnswersOrThrowsGives500) {
  auto server = start_server({}, [](HttpRequest request, Responder) {
    if (request.target == "/throw") throw std::runtime_error("boom");
    // "/drop": the responder is dropped unanswered
  });
  for (const char* path : {"/drop", "/throw"}) {
    const auto response = get(*server, path);
    ASSERT_TRUE(response) << response.error();
    EXPECT_EQ(response->status, 500) << path;
  }
}

TEST(HttpServer, HandlerHeadersWithLineBreaksAreDropped) {
  auto server = start_server({}, [](HttpRequest, Responder respond) {
    auto response = HttpResponse::text(200, "ok");
    response.headers.add("X-Injected", "a\r\nSet-Cookie: evil=1");
    response.headers.add("X-Fine", "yes");
    respond(std::move(response));
  });
  const auto response = get(*server);
  ASSERT_TRUE(response) << response.error();
  EXPECT_FALSE(response->headers.contains("Set-Cookie"));
  EXPECT_FALSE(response->headers.contains("X-Injected"));
  EXPECT_EQ(response->headers.get("X-Fine"), "yes");
}

TEST(HttpServer, StopAcceptingFinishesInFlightRequestsThenStops) {
  std::promise<void> entered, release;
  auto release_future = release.get_future().share();
  auto server = start_server({}, [&](HttpRequest, Responder respond) {
    entered.set_value();
    release_future.wait();
    respond(HttpResponse::text(200, "late"));
  });
  const auto port = server->port();
  auto in_flight = std::async(std::launch::async, [&] { return get(*server, "/slow"); });
  entered.get_future().wait();

  server->stop_accepting();
  EXPECT_TRUE(eventually([&] { return !RawSocket(port).connected(); })) << "still accepting";

  release.set_value();
  const auto response = in_flight.get();
  ASSERT_TRUE(response) << response.error();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "late");
  EXPECT_EQ(response->headers.get("Connection"), "close");
  EXPECT_TRUE(eventually([&] { return server->open_connections() == 0; }));
  server->stop();
  server->stop();  // idempotent
}

TEST(HttpServer, StopClosesIdleConnectionsAndLateRespondersAreHarmless) {
  Responder kept;
  std::mutex kept_mutex;
  std::promise<void> entered;
  auto server = start_server({}, [&](HttpRequest, Responder respond) {
    std::lock_guard lock(kept_mutex);
    kept = std::move(respond);
    entered.set_value();
  });
  RawSocket idle(server->port());
  RawSocket waiting(server->port());
  ASSERT_TRUE(waiting.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  entered.get_future().wait();
  server->stop();
  bool idle_closed = false, waiting_closed = false;
  idle.read_until_closed(5s, &idle_closed);
  EXPECT_TRUE(idle_closed);
  const auto reply = waiting.read_until_closed(5s, &waiting_closed);
  EXPECT_TRUE(waiting_closed);
  EXPECT_TRUE(reply.empty()) << reply;
  std::lock_guard lock(kept_mutex);
  kept(HttpResponse::text(200, "too late"));  // must not crash or hang
  server.reset();
  kept = nullptr;
}

TEST(HttpServer, BindErrorComesBackFromStart) {
  auto first = start_server({}, echo_handler());
  auto second = HttpServer::start({.port = first->port()}, echo_handler());
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("127.0.0.1:" + std::to_string(first->port())), std::string::npos) << second.error();
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();

  auto bad = HttpServer::start({.address = "not-an-address"}, echo_handler());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("not-an-address"), std::string::npos) << bad.error();
}

}  // namespace
}  // namespace sandci::agent::http
