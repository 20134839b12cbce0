#pragma once
// One job's network (issue 14): two network namespaces made for that job, a
// "job" one that its sandbox joins and a "proxy" one that holds the egress
// proxy's listening socket, joined by a veth pair whose two ends live only in
// them. Nothing touches the host's own namespace: no address, no bridge, no
// NAT, no forwarding. The job's only reachable address is the proxy's; a tool
// that ignores the proxy variables cannot connect anywhere.
//
// Addresses: every job gets the same link-local point-to-point /30
// (169.254.77.0/30: proxy .1, job .2). The namespaces are private to the job,
// so the same subnet in every job clashes with nothing, and link-local
// addresses are never routed, so even a leak could not reach anything; the
// range keeps clear of 169.254.169.254 (cloud metadata). Needs root (CAP_NET_ADMIN,
// CAP_SYS_ADMIN) and `ip` (iproute2).
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "sandbox/process.h"
#include "sandbox/sandbox.h"

namespace sandci::sandbox {

struct JobNetworkOptions {
  std::uint16_t proxy_port = 3128;
  // Readable part of the namespaces' names, e.g. the job's name.
  std::string name_hint;
};

class JobNetwork {
 public:
  // Makes both namespaces, the veth pair, the addresses and the job's default
  // route (to the proxy end), and a listening TCP socket on the proxy end.
  // On any failure, removes what it made and says which step failed.
  static std::expected<std::unique_ptr<JobNetwork>, SandboxError> create(JobNetworkOptions options = {});
  // Removes both namespaces (and so the veth pair); the listening socket
  // closes with this object unless it was taken.
  ~JobNetwork();
  JobNetwork(const JobNetwork&) = delete;
  JobNetwork& operator=(const JobNetwork&) = delete;

  // The job namespace's path, for SandboxSpec::network_namespace.
  const std::string& job_namespace() const { return job_path_; }
  const std::string& proxy_namespace() const { return proxy_path_; }
  // The listening socket inside the proxy namespace (accept() on it from any
  // thread: a socket keeps the namespace it was made in). Ownership passes to
  // the caller; -1 once taken.
  int take_listen_fd() { return listen_fd_.release(); }
  // "http://169.254.77.1:3128", as the job sees the proxy.
  std::string proxy_url() const;
  static constexpr const char* kProxyAddress = "169.254.77.1";
  static constexpr const char* kJobAddress = "169.254.77.2";

  // Moves the job end of the link (its address and the default route with it)
  // from `job_namespace` (a JobNetwork's) into `target_netns`, a namespace
  // file another party made and keeps (the Docker engine's for a holder
  // container: its containers cannot join a namespace by path). The job
  // namespace keeps its loopback only; deleting the proxy namespace still
  // removes the pair. Error: which step failed (the link may then be gone).
  static std::expected<void, SandboxError> move_job_end(const std::string& job_namespace,
                                                        const std::string& target_netns);

  // Removes the namespaces of JobNetworks whose process is gone (a crash);
  // returns how many it removed.
  static int reap_stale();
  // Where `ip netns` keeps named namespaces.
  static constexpr const char* kNetnsDir = "/run/netns";

 private:
  JobNetwork() = default;
  std::expected<void, SandboxError> build();

  JobNetworkOptions options_;
  std::string job_name_, proxy_name_, job_path_, proxy_path_;
  Fd listen_fd_;
};

}  // namespace sandci::sandbox
