// The hostile-job suite's network cases for jobs granted egress (issue 14),
// both backends: the sandbox joins the job namespace a JobNetwork made, whose
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
// The same job network on each backend: runsc joins the job namespace by path;
// Docker moves the job's link into a holder container's namespace and starts
// the job's container in it (DockerBackend::start_network_holder).
class HostileEgressBackendsTest : public BothBackendsTest {};

TEST_P(HostileEgressBackendsTest, JobReachesOnlyTheProxyEndNothingElseAndNoName) {
  OutsideNamespace outside;
  auto network = JobNetwork::create({.name_hint = "hostile"});
  ASSERT_TRUE(network) << network.error().message;
  const std::string job_ns = (*network)->job_namespace();
  StandInProxy proxy((*network)->take_listen_fd());
  // As the runner gives a granted job: its only nameserver is its own loopback.
  TempDir etc;
  write_host_file(etc.path().string() + "/resolv.conf", "nameserver 127.0.0.1\n");
  auto spec = default_spec();
  spec.network_namespace = job_ns;
  spec.mounts.push_back(Mount{etc.path().string() + "/resolv.conf", "/etc/resolv.conf", true});
  auto containers = [&] {
    if (GetParam() != BackendKind::kDocker) return std::string();
    auto listed = docker_backend().client().call_json("GET", "/containers/json?all=1", nullptr, "listing");
    return listed ? std::to_string(listed->size()) + " containers" : listed.error().message;
  };
  const std::string containers_before = containers();
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
  // documentation addresses, the host's loopback (the job's loopback is its own).
  for (const char* target : {"169.254.77.1/22", "198.51.100.2/80", "169.254.169.254/80", "203.0.113.5/80",
                             "192.0.2.1/443"}) {
    EXPECT_EQ(probe(target), "unreachable\n") << target;
  }
  EXPECT_EQ(proxy.connections(), 1);
  auto dns = sh(*sandbox, "if getent hosts packages.example.org; then echo resolved; else echo \"nothing $?\"; fi");
  EXPECT_EQ(dns.out(), "nothing 2\n");
  // Refused by the job's own loopback (port unreachable), not left to time out:
  // a timeout would end `read -t` with 142.
  auto nameserver = run(*sandbox, {"bash", "-c",
                                   "exec 4<>/dev/udp/127.0.0.1/53; printf q >&4; "
                                   "if read -t 30 r <&4; then echo answered; else echo \"read $?\"; fi"});
  EXPECT_EQ(nameserver.out(), "read 1\n");
  EXPECT_THAT(nameserver.err(), HasSubstr("Connection refused"));
  // The sandbox sees its veth end and its loopback, nothing of the host.
  auto links = sh(*sandbox, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '");
  EXPECT_EQ(links.out(), "eth0 lo \n");  // out() ends each line
  sandbox.reset();
  network->reset();
  EXPECT_FALSE(fs::exists(job_ns)) << "the job namespace outlived its JobNetwork";
  // Docker: the job's container and its network holder are both gone.
  EXPECT_EQ(containers(), containers_before);
}

INSTANTIATE_BOTH_BACKENDS(HostileEgressBackendsTest);

// Without an egress runtime the Docker backend refuses a job granted egress,
// saying what to configure.
TEST_F(HostileEgressTest, DockerWithoutAnEgressRuntimeRefusesClearly) {
  DockerOptions options = docker_backend().options();
  options.egress_runtime.clear();
  auto plain = DockerBackend::open(options);
  ASSERT_TRUE(plain) << plain.error().message;
  auto network = JobNetwork::create({.name_hint = "refused"});
  ASSERT_TRUE(network) << network.error().message;
  auto spec = default_spec();
  spec.network_namespace = (*network)->job_namespace();
  auto created = (*plain)->create(spec);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("needs sandbox.docker_egress_runtime"));
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
