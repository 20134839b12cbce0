// Egress proxy throughput: one large download and many small requests, each through
// the proxy (plain HTTP forwarding and a CONNECT tunnel) and directly from the
// proxy's outbound namespace, in the same run. Needs root (it makes two network
// namespaces, as the integration tests do). Not a test: prints figures.
//   bench_egress_bench [large_MB=200] [small_requests=1000]
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include "agent/egress/egress_proxy.h"
#include "tests/integration/agent/egress/egress_test_support.h"

using namespace sandci::egress;
using namespace sandci::egress::testing;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `work` on a thread inside the namespace at `netns_path`: the direct path.
void in_netns(const std::string& netns_path, const std::function<void()>& work) {
  std::exception_ptr failed;
  std::thread([&] {
    const int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
      failed = std::make_exception_ptr(std::runtime_error("setns " + netns_path));
      return;
    }
    ::close(ns);
    try {
      work();
    } catch (...) {
      failed = std::current_exception();
    }
  }).join();
  if (failed) std::rethrow_exception(failed);
}

// A socket connected to 198.51.100.2:80 from the calling thread's namespace.
int connect_direct() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(80);
  ::inet_pton(AF_INET, "198.51.100.2", &in.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
    ::close(fd);
    throw std::runtime_error("direct connect failed");
  }
  return fd;
}

// Sends the request, reads the answer to its end; returns the bytes of body.
std::uint64_t fetch(int fd, const std::string& preamble, const std::string& request) {
  Stream stream(fd, nullptr);
  if (!preamble.empty()) {
    stream.write(preamble);
    if (!stream.read_head().starts_with("HTTP/1.1 200")) throw std::runtime_error("CONNECT refused");
  }
  stream.write(request);
  if (!stream.read_head().starts_with("HTTP/1.1 200")) throw std::runtime_error("request refused");
  static std::vector<char> buffer(1 << 20);
  std::uint64_t total = 0;
  for (long got; (got = stream.read(buffer.data(), buffer.size())) > 0;) total += got;
  return total;
}

double seconds_of(const std::function<void()>& work) {
  const auto start = Clock::now();
  work();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t large_mb = argc > 1 ? std::stoull(argv[1]) : 200;
  const int small = argc > 2 ? std::stoi(argv[2]) : 1000;
  const std::uint64_t large = large_mb * 1024 * 1024;
  std::signal(SIGPIPE, SIG_IGN);

  TestNamespaces namespaces;
  OutsideServer server(namespaces.outside_path(), 80);
  const auto hosts = std::filesystem::temp_directory_path() / ("sandci-egress-bench-" + std::to_string(::getpid()));
  std::ofstream(hosts) << "198.51.100.2 outside.example.test\n";
  auto grant = make_grant({"outside.example.test"}, {80}, std::nullopt, 32);
  const int listen_fd = listen_in("", "127.0.0.1", 0);
  const auto port = local_port(listen_fd);
  EgressProxyOptions options;
  options.hosts_file = hosts.string();
  options.outbound_netns = namespaces.egress_path();
  auto proxy = EgressProxy::start(listen_fd, *grant, options);
  if (!proxy) {
    std::fprintf(stderr, "%s\n", proxy.error().c_str());
    return 1;
  }

  const std::string path = "/bytes/" + std::to_string(large);
  const std::string origin = "GET " + path + " HTTP/1.1\r\nHost: outside.example.test\r\n\r\n";
  const std::string absolute = "GET http://outside.example.test" + path + " HTTP/1.1\r\n\r\n";
  const std::string tunnel = "CONNECT outside.example.test:80 HTTP/1.1\r\n\r\n";
  const std::string small_origin = "GET /bytes/1000 HTTP/1.1\r\nHost: outside.example.test\r\n\r\n";
  const std::string small_absolute = "GET http://outside.example.test/bytes/1000 HTTP/1.1\r\n\r\n";

  std::printf("one download of %llu MB (MB/s), then %d requests of 1000 bytes (requests/s)\n",
              static_cast<unsigned long long>(large_mb), small);
  for (int round = 0; round < 2; ++round) {
    std::uint64_t got = 0;
    double direct = 0;
    in_netns(namespaces.egress_path(), [&] { direct = seconds_of([&] { got = fetch(connect_direct(), "", origin); }); });
    const double via_http = seconds_of([&] { got += fetch(connect_to(port), "", absolute); });
    const double via_connect = seconds_of([&] { got += fetch(connect_to(port), tunnel, origin); });
    if (got != 3 * large) throw std::runtime_error("short download");
    std::printf("round %d large: direct %.0f MB/s, proxy http %.0f MB/s, proxy CONNECT %.0f MB/s\n", round + 1,
                large_mb / direct, large_mb / via_http, large_mb / via_connect);
    double small_direct = 0;
    in_netns(namespaces.egress_path(), [&] {
      small_direct = seconds_of([&] {
        for (int i = 0; i < small; ++i) fetch(connect_direct(), "", small_origin);
      });
    });
    const double small_http = seconds_of([&] {
      for (int i = 0; i < small; ++i) fetch(connect_to(port), "", small_absolute);
    });
    const double small_connect = seconds_of([&] {
      for (int i = 0; i < small; ++i) fetch(connect_to(port), tunnel, small_origin);
    });
    std::printf("round %d small: direct %.0f req/s, proxy http %.0f req/s, proxy CONNECT %.0f req/s\n", round + 1,
                small / small_direct, small / small_http, small / small_connect);
  }
  std::printf("proxy relayed %llu bytes, refused %d\n", static_cast<unsigned long long>((*proxy)->bytes()),
              (*proxy)->refused());
  proxy->reset();
  std::filesystem::remove(hosts);
  return 0;
}
