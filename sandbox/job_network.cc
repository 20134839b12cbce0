#include "sandbox/job_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "sandbox/runsc_backend.h"

namespace sandci::sandbox {
namespace {

namespace fs = std::filesystem;

std::atomic<std::uint64_t> counter{0};

constexpr const char* kJobLink = "eth0";
constexpr const char* kProxyLink = "job0";
constexpr const char* kPrefix = "sandci-net-";

std::expected<void, SandboxError> ip(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_capture(argv, 16 << 10);
  if (!result) return std::unexpected(SandboxError{"job network: " + what + ": " + result.error()});
  if (!result->ok()) {
    return std::unexpected(SandboxError{"job network: " + what + ": " + join_args(argv) + ": " + result->describe()});
  }
  return {};
}

// A socket belongs to the namespace it was made in, whichever thread later
// uses it: so a short-lived thread enters the proxy namespace (setns moves
// only the calling thread), makes the socket and ends. The agent's own
// threads never change namespace.
std::expected<Fd, std::string> listen_in(const std::string& netns_path, const char* address, std::uint16_t port) {
  std::expected<Fd, std::string> out = std::unexpected(std::string("not run"));
  std::thread helper([&] {
    Fd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      out = std::unexpected("cannot open " + netns_path + ": " + std::strerror(errno));
      return;
    }
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = std::unexpected("cannot enter " + netns_path + ": " + std::strerror(errno));
      return;
    }
    Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) {
      out = std::unexpected(std::string("socket: ") + std::strerror(errno));
      return;
    }
    int one = 1;
    ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, address, &addr.sin_addr);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(sock.get(), 128) != 0) {
      out = std::unexpected(std::string("listen on ") + address + ":" + std::to_string(port) + ": " +
                            std::strerror(errno));
      return;
    }
    out = std::move(sock);
  });
  helper.join();
  return out;
}

}  // namespace

std::expected<std::unique_ptr<JobNetwork>, SandboxError> JobNetwork::create(JobNetworkOptions options) {
  std::unique_ptr<JobNetwork> network(new JobNetwork());
  network->options_ = std::move(options);
  // pid + counter: unique among this process's jobs and across processes;
  // reap_stale reads the pid back. The hint only helps people reading `ip netns`.
  std::string base = kPrefix + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  std::string hint = sanitize_id_part(network->options_.name_hint, 16);
  if (!hint.empty()) base += "-" + hint;
  network->job_name_ = base + "-job";
  network->proxy_name_ = base + "-proxy";
  network->job_path_ = std::string(kNetnsDir) + "/" + network->job_name_;
  network->proxy_path_ = std::string(kNetnsDir) + "/" + network->proxy_name_;
  if (auto built = network->build(); !built) return std::unexpected(built.error());  // the destructor cleans up
  return network;
}

std::expected<void, SandboxError> JobNetwork::build() {
  const std::string& j = job_name_;
  const std::string& p = proxy_name_;
  const std::string job_cidr = std::string(kJobAddress) + "/30";
  const std::string proxy_cidr = std::string(kProxyAddress) + "/30";
  // Each end is created directly inside its namespace: the pair never exists
  // in the host's, even for a moment.
  const std::vector<std::pair<std::vector<std::string>, std::string>> steps = {
      {{"netns", "add", j}, "create the job namespace"},
      {{"netns", "add", p}, "create the proxy namespace"},
      {{"link", "add", kJobLink, "netns", j, "type", "veth", "peer", "name", kProxyLink, "netns", p},
       "create the veth pair"},
      {{"-n", j, "addr", "add", job_cidr, "dev", kJobLink}, "address the job end"},
      {{"-n", p, "addr", "add", proxy_cidr, "dev", kProxyLink}, "address the proxy end"},
      {{"-n", j, "link", "set", "lo", "up"}, "bring up the job's loopback"},
      {{"-n", j, "link", "set", kJobLink, "up"}, "bring up the job end"},
      {{"-n", p, "link", "set", "lo", "up"}, "bring up the proxy's loopback"},
      {{"-n", p, "link", "set", kProxyLink, "up"}, "bring up the proxy end"},
      {{"-n", j, "route", "add", "default", "via", kProxyAddress}, "route the job to the proxy"},
  };
  for (const auto& [args, what] : steps) {
    if (auto done = ip(args, what); !done) return done;
  }
  auto sock = listen_in(proxy_path_, kProxyAddress, options_.proxy_port);
  if (!sock) return std::unexpected(SandboxError{"job network: proxy socket: " + sock.error()});
  listen_fd_ = std::move(*sock);
  return {};
}

JobNetwork::~JobNetwork() {
  listen_fd_.reset();
  // Deleting a namespace destroys its end of the veth pair, and with it the
  // other end. Both are tried whatever happened before.
  for (const auto& name : {job_name_, proxy_name_}) {
    if (name.empty() || !fs::exists(std::string(kNetnsDir) + "/" + name)) continue;
    (void)ip({"netns", "delete", name}, "delete " + name);
  }
}

std::expected<void, SandboxError> JobNetwork::move_job_end(const std::string& job_namespace,
                                                            const std::string& target_netns) {
  const std::string job = fs::path(job_namespace).filename().string();
  if (!job_namespace.starts_with(std::string(kNetnsDir) + "/") || !fs::exists(job_namespace))
    return std::unexpected(SandboxError{"job network: no job namespace " + job_namespace});
  if (!fs::exists(target_netns))
    return std::unexpected(SandboxError{"job network: no namespace " + target_netns + " to move the job's link into"});
  // `ip link set netns` takes a namespace file's path; the target is then
  // configured from inside it (nsenter), as `ip -n` takes names only.
  if (auto moved = ip({"-n", job, "link", "set", kJobLink, "netns", target_netns}, "move the job end"); !moved)
    return moved;
  const std::string job_cidr = std::string(kJobAddress) + "/30";
  const std::vector<std::pair<std::vector<std::string>, std::string>> steps = {
      {{"addr", "add", job_cidr, "dev", kJobLink}, "address the moved job end"},
      {{"link", "set", "lo", "up"}, "bring up the loopback"},
      {{"link", "set", kJobLink, "up"}, "bring up the moved job end"},
      {{"route", "add", "default", "via", kProxyAddress}, "route the job to the proxy"},
  };
  for (const auto& [args, what] : steps) {
    std::vector<std::string> argv{"nsenter", "--net=" + target_netns, "ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = run_capture(argv, 16 << 10);
    if (!result) return std::unexpected(SandboxError{"job network: " + what + ": " + result.error()});
    if (!result->ok())
      return std::unexpected(SandboxError{"job network: " + what + ": " + join_args(argv) + ": " + result->describe()});
  }
  return {};
}

std::string JobNetwork::proxy_url() const {
  return std::string("http://") + kProxyAddress + ":" + std::to_string(options_.proxy_port);
}

int JobNetwork::reap_stale() {
  int removed = 0;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kNetnsDir, ec)) {
    std::string name = entry.path().filename();
    if (name.starts_with(kPrefix)) names.push_back(name);
  }
  for (const auto& name : names) {
    // sandci-<pid>-<counter>-...: removed only once that process is gone.
    pid_t pid = std::atoi(name.c_str() + std::strlen(kPrefix));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (ip({"netns", "delete", name}, "delete " + name)) ++removed;
  }
  return removed;
}

}  // namespace sandci::sandbox
