#pragma once
// A job's way out when its repository is granted network (issue 14): its own
// network namespaces (sandbox/job_network.h) and the egress proxy serving the
// socket inside them (agent/egress/egress_proxy.h). The job's sandbox joins
// the job namespace and sees the proxy in its environment; there is no other
// route. Jobs without a grant get none of this: no network at all.
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/egress/egress_proxy.h"
#include "sandbox/job_network.h"

namespace sandci::agent {

// What the runner needs to give a run's jobs egress.
struct EgressSettings {
  egress::EgressGrant grant;
  // Non-empty: the proxy resolves names from this /etc/hosts-format file only
  // (tests, air-gapped mirrors); else the system resolver.
  std::string hosts_file;
  // Non-empty: the proxy's outbound connections are made in this network
  // namespace; else in the agent's own.
  std::string outbound_netns;
};

class JobEgress {
 public:
  // Makes the job's namespaces and starts its proxy. Error: a sentence saying
  // which part failed (both are removed again).
  static std::expected<std::unique_ptr<JobEgress>, std::string> start(const EgressSettings& settings,
                                                                      const std::string& name_hint);
  ~JobEgress();  // stops the proxy, then removes the namespaces

  // For SandboxSpec::network_namespace.
  const std::string& network_namespace() const { return network_->job_namespace(); }
  // A host file to mount read-only at the job's /etc/resolv.conf: its only
  // nameserver is 127.0.0.1, where nothing listens inside the job's own network
  // stack, so a lookup is refused at once (port unreachable) instead of waiting
  // out the resolver's timeouts for a server the job can never reach. Names are
  // the proxy's to resolve. Removed with this object.
  const std::string& resolv_conf() const { return resolv_conf_; }
  // HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy, NO_PROXY ("NAME=VALUE").
  std::vector<std::string> env() const;
  // One line per refused connection since the last call ("egress refused:
  // host:port: why"), oldest first. Thread-safe.
  std::vector<std::string> take_refusals();
  // "egress: 3 connections (1 refused), 5120 bytes".
  std::string summary() const;

 private:
  JobEgress() = default;
  void on_event(const egress::EgressEvent& event);

  std::string dir_, resolv_conf_;  // a private temp folder holding the job's resolv.conf
  std::unique_ptr<sandbox::JobNetwork> network_;
  std::unique_ptr<egress::EgressProxy> proxy_;  // destroyed first (declared last)
  mutable std::mutex mutex_;
  std::vector<std::string> refusals_;
  std::uint64_t connections_ = 0, refused_ = 0, bytes_ = 0;
};

// "egress refused: host:port: why" (a request that did not parse: "egress
// refused: bad request: why").
std::string refusal_line(const egress::EgressEvent& event);

}  // namespace sandci::agent
