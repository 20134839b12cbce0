// The hostile-job suite's network cases for jobs granted egress (issue 14),
// runsc backend: the sandbox joins the job namespace a JobNetwork made, whose
// only peer is the proxy end. A stand-in proxy (a plain listener on the
// JobNetwork's socket) answers there; everything else must be unreachable:
// the test's own "outside" address in a namespace it makes, the host's
// loopback, the metadata address, any name (no DNS).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "integration/sandbox/sandbox_fixture.h"
#include "sandbox/job_network.h"

namespace sandci::sandbox::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Answers every connection on the JobNetwork's proxy socket with one line.
class StandInProxy {
 public:
  explicit StandInProxy(int listen_fd) : fd_(listen_fd) {
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        ++connections_;
        (void)!::write(c, "proxy here\n", 11);
        ::close(c);
      }
    });
  }
  ~StandInProxy() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int connections() const { return connections_; }

 private:
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// A namespace with 198.51.100.2 on a listener, standing for the internet: a
// veth from the job's proxy namespace would be the only way there, and there
// is none. Deleted at scope exit.
class OutsideNamespace {
 public:
  OutsideNamespace() : name_("sandci-test-" + std::to_string(::getpid()) + "-outside") {
    (void)std::system(("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up && ip -n " + name_ +
                       " addr add 198.51.100.2/32 dev lo")
                          .c_str());
  }
  ~OutsideNamespace() { (void)std::system(("ip netns delete " + name_ + " 2>/dev/null").c_str()); }

 private:
  std::string name_;
};

class HostileEgressTest : public SandboxTest {};

TEST_F(HostileEgressTest, JobReachesOnlyTheProxyEndNothingElseAndNoName) {
  OutsideNamespace outside;
  auto network = JobNetwork::create({.name_hint = "hostile"});
  ASSERT_TRUE(network) << network.error().message;
  const std::string job_ns = (*network)->job_namespace();
  StandInProxy proxy((*network)->take_listen_fd());
  auto spec = default_spec();
  spec.network_namespace = job_ns;
  auto sandbox = make(spec);
  ASSERT_NE(sandbox, nullptr);
  auto probe = [&](const std::string& target) {
    return sh(*sandbox, "if timeout 10 bash -c 'exec 3<>/dev/tcp/" + target +
                            " && head -n 1 <&3'; then echo reached; else echo unreachable; fi")
        .out();
  };
  EXPECT_EQ(probe("169.254.77.1/3128"), "proxy here\nreached\n");
  EXPECT_EQ(proxy.connections(), 1);
  // The proxy end's other ports, the outside address, the metadata address,
  // a private address, the host's loopback (the job's loopback is its own).
  for (const char* target : {"169.254.77.1/22", "198.51.100.2/80", "169.254.169.254/80", "10.0.0.1/80",
                             "192.168.1.1/443"}) {
    EXPECT_EQ(probe(target), "unreachable\n") << target;
  }
  EXPECT_EQ(proxy.connections(), 1);
  auto dns = sh(*sandbox, "if timeout 20 getent hosts deb.debian.org; then echo resolved; else echo nothing; fi");
  EXPECT_EQ(dns.out(), "nothing\n");
  // The sandbox sees its veth end and its loopback, nothing of the host.
  auto links = sh(*sandbox, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '");
  EXPECT_EQ(links.out(), "eth0 lo \n");  // out() ends each line
  sandbox.reset();
  network->reset();
  EXPECT_FALSE(fs::exists(job_ns)) << "the job namespace outlived its JobNetwork";
}

TEST_F(HostileEgressTest, JobNetworkLeavesNothingInTheHostNamespace) {
  auto before = run_capture({"ip", "-o", "link"});
  ASSERT_TRUE(before && before->ok());
  std::string job_ns, proxy_ns;
  {
    auto network = JobNetwork::create();
    ASSERT_TRUE(network) << network.error().message;
    job_ns = (*network)->job_namespace();
    proxy_ns = (*network)->proxy_namespace();
    EXPECT_TRUE(fs::exists(job_ns));
    EXPECT_TRUE(fs::exists(proxy_ns));
    auto during = run_capture({"ip", "-o", "link"});
    ASSERT_TRUE(during && during->ok());
    EXPECT_EQ(during->out, before->out) << "a link appeared in the host's namespace";
    EXPECT_EQ((*network)->proxy_url(), "http://169.254.77.1:3128");
  }
  EXPECT_FALSE(fs::exists(job_ns));
  EXPECT_FALSE(fs::exists(proxy_ns));
}

TEST_F(HostileEgressTest, MissingNamespaceAndHostNetworkAreClearErrors) {
  auto spec = default_spec();
  spec.network_namespace = "/run/netns/sandci-test-no-such-namespace";
  auto created = backend().create(spec);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("network namespace not found"));
  spec.network = true;
  spec.network_namespace.clear();
  auto host_network = backend().create(spec);
  ASSERT_FALSE(host_network);
  EXPECT_THAT(host_network.error().message, HasSubstr("never the host's"));
}

}  // namespace
}  // namespace sandci::sandbox::testing
