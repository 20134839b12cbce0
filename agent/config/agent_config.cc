#include "agent/config/agent_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace sandci::agent::config {
namespace {

constexpr std::array<std::pair<Forge, std::string_view>, 4> kForges{{
    {Forge::kGithub, "github"},
    {Forge::kGitea, "gitea"},
    {Forge::kForgejo, "forgejo"},
    {Forge::kGitlab, "gitlab"},
}};

constexpr std::array<std::pair<RepositoryEvent, std::string_view>, 4> kEvents{{
    {RepositoryEvent::kPush, "push"},
    {RepositoryEvent::kPullRequest, "pull_request"},
    {RepositoryEvent::kTag, "tag"},
    {RepositoryEvent::kSchedule, "schedule"},
}};

constexpr std::array<std::pair<LogLevel, std::string_view>, 5> kLogLevels{{
    {LogLevel::kTrace, "trace"},
    {LogLevel::kDebug, "debug"},
    {LogLevel::kInfo, "info"},
    {LogLevel::kWarn, "warn"},
    {LogLevel::kError, "error"},
}};

template <typename Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const std::array<std::pair<Enum, std::string_view>, N>& table,
                             std::string_view name) {
  for (const auto& [v, n] : table)
    if (n == name) return v;
  return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

bool is_ip(std::string_view host, int family) {
  unsigned char buffer[16];
  return ::inet_pton(family, std::string(host).c_str(), buffer) == 1;
}

}  // namespace

std::string_view to_string(Forge forge) { return name_of(kForges, forge); }
std::optional<Forge> parse_forge(std::string_view name) { return value_of(kForges, name); }
std::string_view to_string(RepositoryEvent event) { return name_of(kEvents, event); }
std::optional<RepositoryEvent> parse_repository_event(std::string_view name) {
  return value_of(kEvents, name);
}
std::string_view to_string(LogLevel level) { return name_of(kLogLevels, level); }

std::string ListenAddress::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::expected<ListenAddress, std::string> parse_listen_address(std::string_view text) {
  const std::string usage = "use ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";
  ListenAddress out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":")
      return std::unexpected("'" + std::string(text) + "' is not an address: " + usage);
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    if (!is_ip(out.host, AF_INET6))
      return std::unexpected("'" + out.host + "' is not an IPv6 address: " + usage);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return std::unexpected("'" + std::string(text) + "' has no port: " + usage);
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos)
      return std::unexpected("an IPv6 address needs brackets: " + usage);
    if (!is_ip(out.host, AF_INET))
      return std::unexpected("'" + out.host + "' is not an IP address: " + usage);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535)
    return std::unexpected("'" + std::string(port_text) + "' is not a port (1 to 65535)");
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

bool RepositoryConfig::handles(RepositoryEvent event) const {
  return std::find(events.begin(), events.end(), event) != events.end();
}

const RepositoryConfig* AgentConfig::find_repository(Forge forge, std::string_view name) const {
  for (const auto& repository : repositories)
    if (repository.forge == forge && iequals(repository.name, name)) return &repository;
  return nullptr;
}

std::string AgentConfig::run_url(std::string_view run_id) const {
  return public_url + "/runs/" + std::string(run_id);
}

std::vector<std::string> AgentConfig::secret_values() const {
  std::vector<std::string> values;
  if (admin_token) values.push_back(admin_token->reveal());
  for (const auto& token : viewer_tokens) values.push_back(token.reveal());
  for (const auto& repository : repositories) {
    for (const auto& token : repository.viewer_tokens) values.push_back(token.reveal());
    values.push_back(repository.webhook_secret.reveal());
    values.push_back(repository.api_token.reveal());
    for (auto& secret : repository.clone.secrets())
      if (!secret.empty()) values.push_back(std::move(secret));
    for (const auto& secret : repository.secrets) values.push_back(secret.value.reveal());
  }
  for (auto& secret : actions.clone.secrets())
    if (!secret.empty()) values.push_back(std::move(secret));
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

std::string_view to_string(SandboxBackendKind kind) {
  return kind == SandboxBackendKind::kDocker ? "docker" : "runsc";
}

}  // namespace sandci::agent::config
