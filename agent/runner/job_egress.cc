#include "agent/runner/job_egress.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <system_error>
#include <utility>

namespace sandci::agent {
namespace {

constexpr const char* kResolvConf =
    "# sandci: this job reaches the network only through its egress proxy (HTTP_PROXY),\n"
    "# which resolves names itself. Nothing answers DNS here: lookups fail at once.\n"
    "nameserver 127.0.0.1\n";

}  // namespace

std::string refusal_line(const egress::EgressEvent& event) {
  if (event.host.empty()) return "egress refused: bad request: " + event.reason;
  return "egress refused: " + event.host + ":" + std::to_string(event.port) + ": " + event.reason;
}

std::expected<std::unique_ptr<JobEgress>, std::string> JobEgress::start(const EgressSettings& settings,
                                                                        const std::string& name_hint) {
  // Namespaces a crashed agent left behind go first, once per process.
  static std::once_flag reaped;
  std::call_once(reaped, [] { sandbox::JobNetwork::reap_stale(); });
  std::unique_ptr<JobEgress> egress(new JobEgress());
  std::error_code ec;
  std::string dir = (std::filesystem::temp_directory_path(ec) / "sandci-egress-XXXXXX").string();
  if (ec || ::mkdtemp(dir.data()) == nullptr)
    return std::unexpected("cannot make a temporary folder for the job's resolv.conf");
  egress->dir_ = dir;
  egress->resolv_conf_ = dir + "/resolv.conf";
  if (!(std::ofstream(egress->resolv_conf_) << kResolvConf))
    return std::unexpected("cannot write " + egress->resolv_conf_);
  auto network = sandbox::JobNetwork::create({.name_hint = name_hint});
  if (!network) return std::unexpected(network.error().message);
  egress->network_ = std::move(*network);
  egress::EgressProxyOptions options;
  options.hosts_file = settings.hosts_file;
  options.outbound_netns = settings.outbound_netns;
  JobEgress* self = egress.get();
  // The proxy's threads call this; the proxy is stopped before `self` goes.
  options.on_event = [self](const egress::EgressEvent& event) { self->on_event(event); };
  auto proxy = egress::EgressProxy::start(egress->network_->take_listen_fd(), settings.grant, std::move(options));
  if (!proxy) return std::unexpected("egress proxy: " + proxy.error());
  egress->proxy_ = std::move(*proxy);
  return egress;
}

JobEgress::~JobEgress() {
  proxy_.reset();  // no callback after this
  network_.reset();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::vector<std::string> JobEgress::env() const {
  const std::string url = network_->proxy_url();
  return {"HTTP_PROXY=" + url, "HTTPS_PROXY=" + url, "http_proxy=" + url, "https_proxy=" + url,
          "NO_PROXY=localhost,127.0.0.1", "no_proxy=localhost,127.0.0.1"};
}

void JobEgress::on_event(const egress::EgressEvent& event) {
  std::lock_guard lock(mutex_);
  ++connections_;
  bytes_ += event.bytes_up + event.bytes_down;
  if (!event.allowed) {
    ++refused_;
    refusals_.push_back(refusal_line(event));
  }
}

std::vector<std::string> JobEgress::take_refusals() {
  std::lock_guard lock(mutex_);
  return std::exchange(refusals_, {});
}

std::string JobEgress::summary() const {
  std::lock_guard lock(mutex_);
  return "egress: " + std::to_string(connections_) + " connection" + (connections_ == 1 ? "" : "s") + " (" +
         std::to_string(refused_) + " refused), " + std::to_string(bytes_) + " bytes";
}

}  // namespace sandci::agent
