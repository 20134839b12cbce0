#include "agent/egress/egress_grant.h"

#include <algorithm>
#include <cctype>

#include "agent/egress/egress_address.h"

namespace sandci::egress {
namespace {

std::string lower_without_trailing_dot(std::string_view host) {
  if (host.ends_with('.')) host.remove_suffix(1);
  std::string out(host);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  return std::ranges::all_of(label, [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

// Empty when `name` (already lower-cased) is a valid DNS name of two labels or more.
std::string name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 253) return "is longer than 253 characters";
  int labels = 0;
  for (std::size_t start = 0;;) {
    const auto dot = name.find('.', start);
    const auto label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!valid_label(label)) return "has an invalid label \"" + std::string(label) + "\" (letters, digits and '-' only)";
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (labels < 2) return "names a top-level domain only";
  return {};
}

std::string pattern_problem(const std::string& pattern) {
  if (is_ip_literal(pattern)) return "is an IP address; grant host names only";
  if (pattern.find(':') != std::string::npos) return "has a port or a scheme; grant host names only (ports separately)";
  if (pattern.starts_with("*.")) {
    const std::string rest = name_problem(std::string_view(pattern).substr(2));
    return rest.empty() ? rest : "after \"*.\" " + rest;
  }
  if (pattern.find('*') != std::string::npos) return "has '*' other than as the whole first label (\"*.example.org\")";
  return name_problem(pattern);
}

}  // namespace

std::expected<EgressGrant, std::string> make_grant(std::vector<std::string> hosts, std::vector<std::uint16_t> ports,
                                                   std::optional<std::uint64_t> max_bytes, int max_connections) {
  if (hosts.empty()) return std::unexpected("egress grant: no host pattern given");
  for (auto& host : hosts) {
    const std::string original = host;
    host = lower_without_trailing_dot(host);
    if (const auto problem = pattern_problem(host); !problem.empty())
      return std::unexpected("egress grant: host pattern \"" + original + "\" " + problem);
  }
  if (ports.empty()) ports = {80, 443};
  for (const auto port : ports)
    if (port == 0) return std::unexpected("egress grant: port 0 is not a port (1..65535)");
  if (max_bytes && *max_bytes == 0) return std::unexpected("egress grant: max_bytes must be at least 1 when set");
  if (max_connections < 1)
    return std::unexpected("egress grant: max_connections must be at least 1, got " + std::to_string(max_connections));
  return EgressGrant{std::move(hosts), std::move(ports), max_bytes, max_connections};
}

bool host_granted(const EgressGrant& grant, std::string_view host) {
  const std::string name = lower_without_trailing_dot(host);
  if (name.empty() || is_ip_literal(name)) return false;
  return std::ranges::any_of(grant.hosts, [&](const std::string& pattern) {
    if (!pattern.starts_with("*.")) return pattern == name;
    const std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.org"
    return name.size() > suffix.size() && name.ends_with(suffix) && name[name.size() - suffix.size() - 1] != '.';
  });
}

bool port_granted(const EgressGrant& grant, std::uint16_t port) {
  return std::ranges::find(grant.ports, port) != grant.ports.end();
}

}  // namespace sandci::egress
