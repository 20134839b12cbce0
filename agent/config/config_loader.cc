#include "agent/config/config_loader.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <system_error>

#include "agent/egress/egress_grant.h"
#include "git/url.h"
#include "scheduler/did_you_mean.h"
#include "scheduler/yaml_values.h"
#include "scheduler/yaml_source.h"

namespace sandci::agent::config {
namespace {

using scheduler::Diagnostics;
using scheduler::SourceLocation;
using scheduler::YamlSource;
using scheduler::as_bool;
using scheduler::describe;
using scheduler::is_plain;
using Keys = std::span<const std::string_view>;

constexpr std::string_view kTopKeys[] = {
    "listen",         "tls",         "public_url",   "state_dir",
    "capacity",       "log_level",   "default_image", "labels",
    "limits",         "shutdown_grace_seconds",      "interrupted_runs",
    "status",         "admin_token", "repositories", "actions",
    "viewer_tokens", "login_hours", "retention", "sandbox", "egress_hosts_file", "egress_netns"};
constexpr std::string_view kSandboxKeys[] = {"backend",     "docker_socket", "docker_runtime",
                                             "docker_allow_other_runtime", "docker_pull", "warm",
                                             "docker_egress_runtime"};
// In the order of SandboxBackendKind.
constexpr std::string_view kSandboxBackendNames[] = {"runsc", "docker"};
constexpr std::string_view kActionsKeys[] = {"source", "clone"};
constexpr std::string_view kRetentionKeys[] = {"max_age_days", "disk_budget_mib", "keep_rows",
                                               "interval_minutes", "actions_days"};
constexpr std::string_view kKeepRowsNames[] = {"summary", "remove"};
constexpr std::string_view kTlsKeys[] = {"cert", "key"};
constexpr std::string_view kLimitsKeys[] = {"job_memory_mib", "job_log_mib", "webhook_body_mib", "cache_mib",
                                            "state_min_free_mib"};
constexpr std::string_view kStatusKeys[] = {"ca_file"};
constexpr std::string_view kSecretKeys[] = {"file", "credential"};
constexpr std::string_view kRepositoryKeys[] = {
    "name",      "forge", "api_url", "project_id", "webhook_secret",   "api_token",
    "clone_url", "clone", "secrets", "events",     "cancel_superseded", "default_branch",
    "pages",     "viewer_tokens", "egress"};
constexpr std::string_view kEgressKeys[] = {"allow", "ports", "max_mib", "max_connections"};
constexpr std::string_view kCloneKeys[] = {"https_token", "https_username", "ssh_key",
                                           "known_hosts"};
constexpr std::string_view kForgeNames[] = {"github", "gitea", "forgejo", "gitlab"};
constexpr std::string_view kEventNames[] = {"push", "pull_request", "tag", "schedule"};
// In the order of LogLevel and InterruptedRuns.
constexpr std::string_view kLogLevelNames[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kInterruptedRunsNames[] = {"requeue", "error"};
constexpr std::string_view kPagesNames[] = {"private", "public"};

constexpr std::string_view kDefaultStateDir = "/var/lib/sandci";
constexpr std::string_view kSecretForms = "{file: PATH} or {credential: NAME}";
constexpr std::int64_t kMaxCapacity = 4096;
constexpr std::int64_t kMaxLoginHours = 24 * 366;  // a year: a login is not forever
constexpr std::int64_t kMaxMib = 1 << 20;
constexpr std::int64_t kMaxGraceSeconds = 24 * 3600;

std::string join(Keys names) {
  std::string out;
  for (std::string_view name : names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::optional<std::int64_t> as_integer(const YAML::Node& node) {
  if (!node.IsScalar() || !is_plain(node)) return std::nullopt;
  const std::string& s = node.Scalar();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Job secret names, as ${{ secrets.NAME }} and environment variables need them.
bool valid_secret_name(std::string_view name) {
  auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return !name.empty() && letter(name[0]) &&
         std::all_of(name.begin(), name.end(), [&](char c) { return letter(c) || digit(c); });
}

// "owner/name" or GitLab's "group/subgroup/name": non-empty parts, no white space.
bool valid_repository_name(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/' ||
      name.find('/') == std::string_view::npos || name.find("//") != std::string_view::npos)
    return false;
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

std::optional<std::string> default_api_url(Forge forge) {
  switch (forge) {
    case Forge::kGithub: return "https://api.github.com";
    case Forge::kGitlab: return "https://gitlab.com/api/v4";
    case Forge::kGitea:
    case Forge::kForgejo: return std::nullopt;  // no public instance to assume
  }
  return std::nullopt;
}

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

const Entry* find(const std::vector<Entry>& entries, std::string_view key) {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

// A file the agent will read later (TLS, CA bundle, known_hosts): it must be a
// readable regular file now, so a typo fails at start-up rather than at first use.
std::optional<std::string> unreadable_file_problem(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) return "cannot read " + path.string() + ": " + ec.message();
  if (!std::filesystem::is_regular_file(status)) return path.string() + " is not a regular file";
  std::ifstream in(path);
  if (!in) return "cannot read " + path.string() + ": permission denied";
  return std::nullopt;
}

class ConfigParser {
 public:
  ConfigParser(const YamlSource& source, const Environment& env, std::filesystem::path base_dir,
               Diagnostics& out)
      : source_(source), env_(env), base_dir_(std::move(base_dir)), out_(out) {}

  std::optional<AgentConfig> parse(const YAML::Node& root) {
    AgentConfig config;
    config.capacity = std::max(1u, env_.cores);
    config.state_dir = default_state_dir();
    if (!root.IsMap()) {
      error(root, "the configuration must be a mapping of settings, not " + describe(root));
      return std::nullopt;
    }
    const auto entries = mapping(root, "the configuration", kTopKeys);
    for (const Entry& e : entries) parse_setting(e, config);
    if (!find(entries, "public_url"))
      error(root, "'public_url' is required: commit statuses link to <public_url>/runs/<id>");
    if (!find(entries, "repositories"))
      error(root, "'repositories' is required: list the repositories this agent builds");
    if (errors_ != 0) return std::nullopt;
    return config;
  }

 private:
  // ---- reporting ----
  void error(const SourceLocation& where, std::string message) {
    out_.push_back({where, std::move(message)});
    ++errors_;
  }
  void error(const YAML::Node& node, std::string message) { error(source_.at(node), std::move(message)); }
  // Nulls carry the mark of the next token, so point at their key instead.
  SourceLocation where(const Entry& e) const {
    return e.value.IsNull() ? source_.at(e.key_node) : source_.at(e.value);
  }

  // Where a mapping begins: its first key (yaml-cpp marks a block mapping at its
  // first value).
  SourceLocation start_of(const YAML::Node& map) const {
    if (map.IsMap() && map.size() > 0) return source_.at(map.begin()->first);
    return source_.at(map);
  }

  std::filesystem::path default_state_dir() const {
    // systemd may list several folders ("a:b") when StateDirectory= names several.
    const std::string& dirs = env_.state_directory;
    const std::string first = dirs.substr(0, dirs.find(':'));
    return first.empty() ? std::filesystem::path{kDefaultStateDir} : std::filesystem::path{first};
  }

  std::filesystem::path resolve(const std::string& path) const {
    const std::filesystem::path p{path};
    return (p.is_absolute() ? p : base_dir_ / p).lexically_normal();
  }

  // ---- structure ----
  std::vector<Entry> mapping(const YAML::Node& node, const std::string& what, Keys allowed) {
    std::vector<Entry> entries;
    auto report = [this](const YAML::Node& at, const std::string& message) { error(at, message); };
    for (auto& [name, key, value] : scheduler::yaml_entries(node, what, report)) {
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        error(key, "unknown key '" + name + "' in " + what + scheduler::did_you_mean(name, allowed));
        continue;
      }
      entries.push_back({name, key, value});
    }
    return entries;
  }

  // A mapping value whose entry may be left empty (`status:`): nothing to read.
  std::vector<Entry> section(const Entry& e, Keys allowed) {
    if (e.value.IsNull()) return {};
    return mapping(e.value, "'" + e.key + "'", allowed);
  }

  // ---- scalars ----
  std::optional<std::string> string_of(const Entry& e) {
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      error(where(e), "'" + e.key + "' must be a non-empty string, not " + describe(e.value));
      return std::nullopt;
    }
    return e.value.Scalar();
  }

  std::optional<bool> bool_of(const Entry& e) {
    auto b = as_bool(e.value);
    if (!b) error(where(e), "'" + e.key + "' must be true or false, not " + describe(e.value));
    return b;
  }

  std::optional<std::int64_t> integer_of(const Entry& e, std::int64_t min, std::int64_t max) {
    auto n = as_integer(e.value);
    if (!n) {
      error(where(e), "'" + e.key + "' must be a whole number, not " + describe(e.value));
      return std::nullopt;
    }
    if (*n < min || *n > max) {
      error(where(e), "'" + e.key + "' must be from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", not " + std::to_string(*n));
      return std::nullopt;
    }
    return n;
  }

  // The index of the value in `choices`.
  std::optional<std::size_t> choice_of(const Entry& e, Keys choices) {
    auto s = string_of(e);
    if (!s) return std::nullopt;
    const auto it = std::find(choices.begin(), choices.end(), *s);
    if (it == choices.end()) {
      error(where(e), "unknown " + e.key + " '" + *s + "'" + scheduler::did_you_mean(*s, choices) +
                          " (one of: " + join(choices) + ")");
      return std::nullopt;
    }
    return static_cast<std::size_t>(it - choices.begin());
  }

  std::optional<std::filesystem::path> file_of(const Entry& e) {
    auto s = string_of(e);
    if (!s) return std::nullopt;
    const auto path = resolve(*s);
    if (auto problem = unreadable_file_problem(path)) {
      error(where(e), *problem);
      return std::nullopt;
    }
    return path;
  }

  // An http(s) URL without credentials, query or fragment; trailing slashes removed
  // so "<url>/path" never has two.
  std::optional<std::string> http_url_of(const Entry& e, std::string_view example) {
    auto s = string_of(e);
    if (!s) return std::nullopt;
    const auto url = git::parse_repo_url(*s);
    if (url && (!url->user.empty() || !url->password.empty())) {
      // Not quoted: the user part may be a token.
      error(where(e), "'" + e.key + "' must not hold credentials");
      return std::nullopt;
    }
    if (!url || (url->scheme != "https" && url->scheme != "http") || url->host.empty() ||
        s->find_first_of("?# \t") != std::string::npos) {
      error(where(e), "'" + e.key + "' must be an http(s) URL such as " + std::string(example) +
                          ", not '" + *s + "'");
      return std::nullopt;
    }
    std::string out = *s;
    while (out.ends_with('/')) out.pop_back();
    return out;
  }

  // ---- secrets ----
  struct ResolvedSecret {
    std::filesystem::path path;
    Secret value;
  };

  std::optional<ResolvedSecret> secret_of(const Entry& e) {
    if (e.value.IsScalar()) {
      // Never quote the value: it is probably the secret itself.
      error(where(e), "'" + e.key + "': secrets are never written in the config: use " +
                          std::string(kSecretForms));
      return std::nullopt;
    }
    if (!e.value.IsMap()) {
      error(where(e), "'" + e.key + "' must be " + std::string(kSecretForms) + ", not " +
                          describe(e.value));
      return std::nullopt;
    }
    const auto fields = mapping(e.value, "'" + e.key + "'", kSecretKeys);
    if (fields.size() != 1) {
      if (fields.size() > 1 || e.value.size() == 0)
        error(where(e), "'" + e.key + "' must be " + std::string(kSecretForms) + " (exactly one)");
      return std::nullopt;
    }
    const Entry& field = fields.front();
    auto name = string_of(field);
    if (!name) return std::nullopt;
    SecretSource source{SecretSource::Kind::kCredential, *name};
    if (field.key == "file") source = {SecretSource::Kind::kFile, resolve(*name).string()};
    auto path = secret_file(source, env_);
    auto value = path ? read_secret(source, env_) : std::unexpected(path.error());
    if (!value) {
      error(where(field), value.error());
      return std::nullopt;
    }
    return ResolvedSecret{*path, std::move(*value)};
  }

  std::optional<Secret> secret_value_of(const Entry& e) {
    auto resolved = secret_of(e);
    if (!resolved) return std::nullopt;
    return std::move(resolved->value);
  }

  // ---- sections ----
  void parse_setting(const Entry& e, AgentConfig& config) {
    const std::string& key = e.key;
    if (key == "listen") {
      if (auto text = string_of(e)) {
        if (auto address = parse_listen_address(*text))
          config.listen = *address;
        else
          error(where(e), "'listen': " + address.error());
      }
    } else if (key == "tls") {
      config.tls = parse_tls(e);
    } else if (key == "public_url") {
      if (auto url = http_url_of(e, "https://ci.example.org")) config.public_url = *url;
    } else if (key == "state_dir") {
      if (auto dir = string_of(e)) {
        if (std::filesystem::path{*dir}.is_absolute())
          config.state_dir = std::filesystem::path{*dir}.lexically_normal();
        else
          error(where(e), "'state_dir' must be an absolute path, not '" + *dir + "'");
      }
    } else if (key == "capacity") {
      if (auto n = integer_of(e, 1, kMaxCapacity)) config.capacity = static_cast<unsigned>(*n);
    } else if (key == "log_level") {
      if (auto i = choice_of(e, kLogLevelNames)) config.log_level = static_cast<LogLevel>(*i);
    } else if (key == "default_image") {
      if (auto image = string_of(e)) config.default_image = *image;
    } else if (key == "labels") {
      parse_labels(e, config.labels);
    } else if (key == "limits") {
      parse_limits(e, config.limits);
    } else if (key == "shutdown_grace_seconds") {
      if (auto n = integer_of(e, 0, kMaxGraceSeconds))
        config.shutdown_grace_seconds = static_cast<unsigned>(*n);
    } else if (key == "interrupted_runs") {
      if (auto i = choice_of(e, kInterruptedRunsNames))
        config.interrupted_runs = static_cast<InterruptedRuns>(*i);
    } else if (key == "status") {
      for (const Entry& f : section(e, kStatusKeys))
        if (auto file = file_of(f)) config.status.ca_file = *file;
    } else if (key == "admin_token") {
      config.admin_token = secret_value_of(e);
    } else if (key == "viewer_tokens") {
      parse_viewer_tokens(e, config.viewer_tokens);
    } else if (key == "login_hours") {
      if (auto n = integer_of(e, 1, kMaxLoginHours)) config.login_hours = static_cast<unsigned>(*n);
    } else if (key == "repositories") {
      parse_repositories(e, config.repositories);
    } else if (key == "actions") {
      parse_actions(e, config.actions);
    } else if (key == "retention") {
      parse_retention(e, config.retention);
    } else if (key == "sandbox") {
      parse_sandbox(e, config.sandbox);
    } else if (key == "egress_hosts_file") {
      if (auto file = file_of(e)) config.egress_hosts_file = *file;
    } else if (key == "egress_netns") {
      if (auto netns = network_namespace_of(e)) config.egress_netns = *netns;
    }
  }

  // A network namespace file (/run/netns/NAME, /proc/PID/ns/net) that exists now:
  // a typo, or a namespace not made yet, fails at start-up, not at the first job.
  std::optional<std::filesystem::path> network_namespace_of(const Entry& e) {
    auto s = string_of(e);
    if (!s) return std::nullopt;
    const auto path = resolve(*s);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error(where(e), "cannot open " + path.string() + ": " + std::strerror(errno) +
                          " ('egress_netns' names a network namespace such as /run/netns/egress)");
      return std::nullopt;
    }
    const int type = ::ioctl(fd, NS_GET_NSTYPE);
    ::close(fd);
    if (type != CLONE_NEWNET) {
      error(where(e), "'egress_netns': " + path.string() +
                          " is not a network namespace (make one with `ip netns add NAME`: /run/netns/NAME)");
      return std::nullopt;
    }
    return path;
  }

  void parse_retention(const Entry& e, RetentionConfig& retention) {
    if (!e.value.IsNull() && !e.value.IsMap()) {
      error(where(e), "'retention' must be a mapping such as {max_age_days: 30, disk_budget_mib: 10240}, not " +
                          describe(e.value));
      return;
    }
    for (const Entry& f : section(e, kRetentionKeys)) {
      if (f.key == "keep_rows") {
        if (auto i = choice_of(f, kKeepRowsNames)) retention.keep_rows = static_cast<KeepRows>(*i);
      } else if (f.key == "max_age_days") {
        // A hundred years: enough to mean "keep by budget only".
        if (auto n = integer_of(f, 1, 36500)) retention.max_age_days = static_cast<std::uint64_t>(*n);
      } else if (f.key == "actions_days") {
        // At least a day: a tree is stamped when a run resolves it, and must outlast
        // the wait until its job mounts it (action_cache_pruning.h).
        if (auto n = integer_of(f, 1, 36500)) retention.actions_days = static_cast<std::uint64_t>(*n);
      } else if (f.key == "disk_budget_mib") {
        if (auto n = integer_of(f, 1, kMaxMib)) retention.disk_budget_mib = static_cast<std::uint64_t>(*n);
      } else if (f.key == "interval_minutes") {
        // At most a week, so a pass runs well within the shortest age.
        if (auto n = integer_of(f, 1, 10080)) retention.interval_minutes = static_cast<std::uint64_t>(*n);
      }
    }
  }

  void parse_sandbox(const Entry& e, SandboxConfig& sandbox) {
    if (!e.value.IsNull() && !e.value.IsMap()) {
      error(where(e), "'sandbox' must be a mapping such as {backend: docker}, not " + describe(e.value));
      return;
    }
    std::optional<SourceLocation> runtime_at;
    for (const Entry& f : section(e, kSandboxKeys)) {
      if (f.key == "backend") {
        if (auto i = choice_of(f, kSandboxBackendNames)) sandbox.backend = static_cast<SandboxBackendKind>(*i);
      } else if (f.key == "docker_socket") {
        if (auto path = string_of(f)) {
          if (std::filesystem::path{*path}.is_absolute())
            sandbox.docker_socket = std::filesystem::path{*path}.lexically_normal();
          else
            error(where(f), "'docker_socket' must be an absolute path, not '" + *path + "'");
        }
      } else if (f.key == "docker_runtime") {
        if (auto runtime = string_of(f)) sandbox.docker_runtime = *runtime;
        runtime_at = where(f);
      } else if (f.key == "docker_egress_runtime") {
        if (auto runtime = string_of(f)) sandbox.docker_egress_runtime = *runtime;
      } else if (f.key == "docker_allow_other_runtime") {
        if (auto b = bool_of(f)) sandbox.docker_allow_other_runtime = *b;
      } else if (f.key == "docker_pull") {
        if (auto b = bool_of(f)) sandbox.docker_pull = *b;
      } else if (f.key == "warm") {
        if (auto n = integer_of(f, 0, kMaxWarmSandboxes)) sandbox.warm = static_cast<std::size_t>(*n);
      }
    }
    // Without gVisor a job shares the host's kernel: never by accident.
    if (runtime_at && sandbox.docker_runtime != "runsc" && !sandbox.docker_allow_other_runtime) {
      error(*runtime_at, "'docker_runtime: " + sandbox.docker_runtime +
                                       "' drops gVisor (jobs would share the host kernel); set "
                                       "'docker_allow_other_runtime: true' to mean it");
    }
  }

  void parse_actions(const Entry& e, ActionsConfig& actions) {
    if (!e.value.IsNull() && !e.value.IsMap()) {
      error(where(e), "'actions' must be a mapping such as {source: https://github.com}, not " + describe(e.value));
      return;
    }
    for (const Entry& f : section(e, kActionsKeys)) {
      if (f.key == "source") {
        if (auto source = actions_source_of(f)) actions.source = *source;
      } else if (f.key == "clone") {
        parse_clone(f, actions.clone);
      }
    }
  }

  // The same rules as the runner's actions_source_problem (agent/runner): an
  // https, ssh, git or file URL (or an absolute folder) without credentials.
  std::optional<std::string> actions_source_of(const Entry& e) {
    auto text = string_of(e);
    if (!text) return std::nullopt;
    const auto url = git::parse_repo_url(*text);
    const bool https = url && (url->scheme == "https" || url->scheme == "http");
    if (url && (!url->password.empty() || (https && !url->user.empty()))) {
      error(where(e), "'source' must not hold credentials: use actions.clone.https_token");
      return std::nullopt;
    }
    if (text->find_first_of("?#") != std::string::npos) {
      error(where(e), "'source' must not have a query or fragment");
      return std::nullopt;
    }
    const bool known = url && (https || url->scheme == "ssh" || url->scheme == "git" || url->scheme == "file");
    const bool located = url && (url->scheme == "file" ? url->path.starts_with("/") : !url->host.empty());
    if (!known || !located) {
      error(where(e), "'source' must be an https, ssh or git URL (or an absolute folder) under which "
                      "owner/repo is found, such as https://github.com, not '" + git::redact_url(*text) + "'");
      return std::nullopt;
    }
    return *text;
  }

  std::optional<TlsFiles> parse_tls(const Entry& e) {
    if (!e.value.IsMap()) {
      error(where(e), "'tls' must be {cert: FILE, key: FILE}, not " + describe(e.value));
      return std::nullopt;
    }
    const auto fields = mapping(e.value, "'tls'", kTlsKeys);
    TlsFiles tls;
    bool complete = true;
    for (std::string_view required : kTlsKeys) {
      const Entry* f = find(fields, required);
      if (!f) {
        error(where(e), "'tls' needs '" + std::string(required) + "'");
        complete = false;
      } else if (auto file = file_of(*f)) {
        (required == "cert" ? tls.cert : tls.key) = *file;
      } else {
        complete = false;
      }
    }
    return complete ? std::optional{tls} : std::nullopt;
  }

  void parse_labels(const Entry& e, std::map<std::string, std::string>& labels) {
    for (const Entry& label : section(e, {}))
      if (auto image = string_of(label)) labels[label.key] = *image;
  }

  void parse_limits(const Entry& e, Limits& limits) {
    for (const Entry& f : section(e, kLimitsKeys)) {
      auto n = integer_of(f, 1, kMaxMib);
      if (!n) continue;
      const auto mib = static_cast<std::uint64_t>(*n);
      if (f.key == "job_memory_mib") limits.job_memory_mib = mib;
      if (f.key == "job_log_mib") limits.job_log_mib = mib;
      if (f.key == "webhook_body_mib") limits.webhook_body_mib = mib;
      if (f.key == "cache_mib") limits.cache_mib = mib;
      if (f.key == "state_min_free_mib") limits.state_min_free_mib = mib;
    }
  }

  void parse_repositories(const Entry& e, std::vector<RepositoryConfig>& repositories) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      error(where(e), "'repositories' must be a list of at least one repository, not " +
                          describe(e.value));
      return;
    }
    // (forge, lower-case name) -> where it was first named.
    std::map<std::pair<Forge, std::string>, SourceLocation> seen;
    std::size_t index = 0;
    for (const auto& item : e.value) {
      ++index;
      auto repository = parse_repository(item, index);
      if (!repository) continue;
      const auto& [node, config] = *repository;
      const auto [it, inserted] =
          seen.emplace(std::pair{config.forge, lower(config.name)}, source_.at(node));
      if (!inserted) {
        error(node, "repository '" + config.name + "' on " + std::string(to_string(config.forge)) +
                        " is listed twice (first at line " + std::to_string(it->second.line) + ")");
        continue;
      }
      repositories.push_back(config);
    }
  }

  // "repository 'alice/hello'" when the entry names one, else "repository #2", so
  // every message about the entry says which one it is.
  static std::string repository_title(const YAML::Node& node, std::size_t index) {
    if (node.IsMap())
      for (const auto& pair : node)
        if (pair.first.IsScalar() && pair.first.Scalar() == "name" && pair.second.IsScalar() &&
            valid_repository_name(pair.second.Scalar()))
          return "repository '" + pair.second.Scalar() + "'";
    return "repository #" + std::to_string(index);
  }

  // The repository and its name node (for the duplicate check); nullopt on errors.
  std::optional<std::pair<YAML::Node, RepositoryConfig>> parse_repository(const YAML::Node& node,
                                                                           std::size_t index) {
    const std::size_t errors_before = errors_;
    const std::string what = repository_title(node, index);
    const auto fields = mapping(node, what, kRepositoryKeys);
    if (!node.IsMap()) return std::nullopt;
    RepositoryConfig repository;
    YAML::Node name_node = node;
    const SourceLocation start = start_of(node);

    const Entry* name = find(fields, "name");
    const Entry* forge = find(fields, "forge");
    if (name) {
      name_node = name->value;
      if (auto text = string_of(*name)) {
        if (valid_repository_name(*text)) {
          repository.name = *text;
        } else {
          error(where(*name), "'name' must be the repository's full name such as alice/hello, not '" +
                                  *text + "'");
        }
      }
    }
    std::optional<Forge> forge_value;
    if (forge)
      if (auto i = choice_of(*forge, kForgeNames)) forge_value = parse_forge(kForgeNames[*i]);
    for (std::string_view required : {"name", "forge", "webhook_secret", "api_token"})
      if (!find(fields, required)) error(start, what + " needs '" + std::string(required) + "'");
    if (forge_value) repository.forge = *forge_value;

    if (const Entry* api = find(fields, "api_url")) {
      if (auto url = http_url_of(*api, "https://api.github.com")) repository.api_url = *url;
    } else if (forge_value) {
      if (auto url = default_api_url(*forge_value))
        repository.api_url = *url;
      else
        error(start, what + " needs 'api_url' on " + std::string(to_string(*forge_value)) +
                        " (the API root, such as https://git.example.org/api/v1)");
    }
    check_project_id(fields, start, what, forge_value, repository);

    if (const Entry* f = find(fields, "webhook_secret"))
      if (auto s = secret_value_of(*f)) repository.webhook_secret = std::move(*s);
    if (const Entry* f = find(fields, "api_token"))
      if (auto s = secret_value_of(*f)) repository.api_token = std::move(*s);
    if (const Entry* f = find(fields, "clone_url")) parse_clone_url(*f, repository);
    if (const Entry* f = find(fields, "clone")) parse_clone(*f, repository.clone);
    if (const Entry* f = find(fields, "secrets")) parse_job_secrets(*f, repository.secrets);
    if (const Entry* f = find(fields, "events")) parse_events(*f, repository.events);
    if (const Entry* f = find(fields, "cancel_superseded"))
      repository.cancel_superseded = bool_of(*f).value_or(true);
    if (const Entry* f = find(fields, "default_branch")) parse_default_branch(*f, repository);
    if (const Entry* f = find(fields, "pages"))
      if (auto i = choice_of(*f, kPagesNames)) repository.pages_public = kPagesNames[*i] == "public";
    if (const Entry* f = find(fields, "viewer_tokens")) parse_viewer_tokens(*f, repository.viewer_tokens);
    if (const Entry* f = find(fields, "egress")) parse_egress(*f, repository.egress);

    if (errors_ != errors_before) return std::nullopt;
    return std::pair{name_node, std::move(repository)};
  }

  void check_project_id(const std::vector<Entry>& fields, const SourceLocation& start,
                        const std::string& what, std::optional<Forge> forge,
                        RepositoryConfig& repository) {
    const Entry* id = find(fields, "project_id");
    if (forge == Forge::kGitlab && !id)
      error(start, what + " needs 'project_id' on gitlab (the number on the project's page)");
    if (!id) return;
    if (forge && forge != Forge::kGitlab) {
      error(id->key_node, "'project_id' is only for gitlab repositories");
      return;
    }
    if (auto n = integer_of(*id, 1, std::numeric_limits<std::int64_t>::max())) repository.project_id = *n;
  }

  // egress: {allow: [host patterns], ports: [80, 443], max_mib: N, max_connections: N}:
  // the network this repository's jobs may reach through the egress proxy. Each bad
  // value is reported at itself, so a long allow list points at the one to fix.
  void parse_egress(const Entry& e, std::optional<egress::EgressGrant>& grant) {
    if (!e.value.IsNull() && !e.value.IsMap()) {
      error(where(e), "'egress' must be a mapping such as {allow: [packages.example.org], ports: [443]}, not " +
                          describe(e.value));
      return;
    }
    const std::size_t errors_before = errors_;
    const auto fields = section(e, kEgressKeys);
    const Entry* allow = find(fields, "allow");
    if (!allow) {
      error(where(e), "'egress' needs 'allow': the host names (or *.domain patterns) jobs may reach");
      return;
    }
    std::vector<std::string> hosts;
    if (!allow->value.IsSequence() || allow->value.size() == 0) {
      error(where(*allow), "'allow' must be a list of host names such as packages.example.org or *.example.org, not " +
                               describe(allow->value));
      return;
    }
    for (std::size_t i = 0; i < allow->value.size(); ++i) {
      const Entry item{"allow[" + std::to_string(i) + "]", allow->value[i], allow->value[i]};
      auto host = string_of(item);
      if (!host) continue;
      if (auto alone = egress::make_grant({*host}, {}, std::nullopt, 1); !alone) {
        std::string why = alone.error();
        if (why.starts_with("egress grant: ")) why.erase(0, 14);
        error(where(item), "'" + item.key + "': " + why);
        continue;
      }
      hosts.push_back(*host);
    }
    std::vector<std::uint16_t> ports;
    if (const Entry* p = find(fields, "ports")) {
      if (!p->value.IsSequence() || p->value.size() == 0) {
        error(where(*p), "'ports' must be a list of port numbers such as [80, 443], not " + describe(p->value));
      } else {
        for (std::size_t i = 0; i < p->value.size(); ++i) {
          const Entry item{"ports[" + std::to_string(i) + "]", p->value[i], p->value[i]};
          if (auto port = integer_of(item, 1, 65535)) ports.push_back(static_cast<std::uint16_t>(*port));
        }
      }
    }
    std::optional<std::uint64_t> max_bytes;
    if (const Entry* m = find(fields, "max_mib"))
      if (auto mib = integer_of(*m, 1, 1 << 30)) max_bytes = static_cast<std::uint64_t>(*mib) << 20;
    int max_connections = 32;
    if (const Entry* c = find(fields, "max_connections"))
      if (auto n = integer_of(*c, 1, 4096)) max_connections = static_cast<int>(*n);
    if (errors_ != errors_before) return;
    auto made = egress::make_grant(std::move(hosts), std::move(ports), max_bytes, max_connections);
    if (!made) {
      error(where(*allow), made.error());
      return;
    }
    grant = std::move(*made);
  }

  void parse_clone_url(const Entry& e, RepositoryConfig& repository) {
    auto text = string_of(e);
    if (!text) return;
    const auto url = git::parse_repo_url(*text);
    if (url && !url->password.empty()) {
      error(where(e), "'clone_url' must not hold credentials: use clone.https_token");
      return;
    }
    const bool ssh = url && (url->scheme == "ssh" || url->scheme == "git");
    const bool https = url && (url->scheme == "https" || url->scheme == "http");
    if (https && !url->user.empty()) {
      error(where(e), "'clone_url' must not hold credentials: use clone.https_token");
      return;
    }
    if ((!ssh && !https) || url->host.empty()) {
      error(where(e), "'clone_url' must be an https, ssh or git URL, not '" + *text + "'");
      return;
    }
    repository.clone_url = *text;
  }

  void parse_default_branch(const Entry& e, RepositoryConfig& repository) {
    auto text = string_of(e);
    if (!text) return;
    std::string branch = *text;
    if (branch.starts_with("refs/heads/")) branch = branch.substr(11);
    const bool valid = !branch.empty() && !branch.starts_with("refs/") && !branch.starts_with('-') &&
                       branch.find_first_of(" ~^:?*[\\") == std::string::npos && branch.find("..") == std::string::npos;
    if (!valid) {
      error(where(e), "'default_branch' must be a branch name such as main, not '" + *text + "'");
      return;
    }
    repository.default_branch = branch;
  }

  void parse_clone(const Entry& e, git::Credentials& credentials) {
    const auto fields = section(e, kCloneKeys);
    const Entry* token = find(fields, "https_token");
    const Entry* username = find(fields, "https_username");
    const Entry* ssh_key = find(fields, "ssh_key");
    const Entry* known_hosts = find(fields, "known_hosts");
    if (token) {
      if (auto s = secret_value_of(*token)) {
        credentials.https.emplace();
        credentials.https->token = s->reveal();
      }
    }
    if (username) {
      auto name = string_of(*username);
      if (!token)
        error(username->key_node, "'https_username' needs 'https_token'");
      else if (name && credentials.https)
        credentials.https->username = *name;
    }
    if (ssh_key) {
      if (auto key = secret_of(*ssh_key)) {
        credentials.ssh.emplace();
        credentials.ssh->private_key = key->path;
      }
      if (!known_hosts)
        error(ssh_key->key_node,
              "'ssh_key' needs 'known_hosts': without it every SSH host is refused");
    }
    if (known_hosts)
      if (auto file = file_of(*known_hosts)) credentials.known_hosts = *file;
  }

  // A list of secrets, each {file: PATH} or {credential: NAME}: the tokens that may
  // see private pages.
  void parse_viewer_tokens(const Entry& e, std::vector<Secret>& tokens) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      error(where(e), "'" + e.key + "' must be a list of " + std::string(kSecretForms) + ", not " +
                          describe(e.value));
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      const Entry item{e.key + "[" + std::to_string(i) + "]", e.value[i], e.value[i]};
      if (auto token = secret_value_of(item)) tokens.push_back(std::move(*token));
    }
  }

  void parse_job_secrets(const Entry& e, std::vector<JobSecret>& secrets) {
    for (const Entry& secret : section(e, {})) {
      if (!valid_secret_name(secret.key)) {
        error(secret.key_node, "invalid secret name '" + secret.key +
                                   "': use letters, digits and '_', not starting with a digit");
        continue;
      }
      if (auto value = secret_value_of(secret)) secrets.push_back({secret.key, std::move(*value)});
    }
  }

  void parse_events(const Entry& e, std::vector<RepositoryEvent>& events) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      error(where(e), "'events' must be a list of at least one of " + join(kEventNames) + ", not " +
                          describe(e.value));
      return;
    }
    events.clear();
    for (const auto& item : e.value) {
      const std::string name = item.IsScalar() ? item.Scalar() : "";
      auto event = parse_repository_event(name);
      if (!event) {
        error(item, "unknown event " + describe(item) + scheduler::did_you_mean(name, kEventNames) +
                        " (one of: " + join(kEventNames) + ")");
      } else if (std::find(events.begin(), events.end(), *event) != events.end()) {
        error(item, "event '" + name + "' is listed twice");
      } else {
        events.push_back(*event);
      }
    }
  }

  const YamlSource& source_;
  const Environment& env_;
  std::filesystem::path base_dir_;
  Diagnostics& out_;
  std::size_t errors_ = 0;
};

// YamlSource speaks of workflows; say the same about this file.
void reword_parse_errors(Diagnostics& diagnostics) {
  for (auto& d : diagnostics) {
    if (d.message.starts_with("the file is empty"))
      d.message = "the file is empty: the agent needs at least 'public_url' and 'repositories'";
    else if (d.message.starts_with("a workflow file must hold exactly one"))
      d.message = "the configuration file must hold exactly one YAML document";
  }
}

void sort_by_position(Diagnostics& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const auto& a, const auto& b) {
    return std::pair{a.location.line, a.location.column} < std::pair{b.location.line, b.location.column};
  });
}

}  // namespace

LoadedConfig parse_agent_config(std::string_view text, const std::string& file,
                                const std::filesystem::path& base_dir, const Environment& env) {
  LoadedConfig result;
  if (text.size() > kMaxConfigBytes) {
    result.diagnostics.push_back({{file, 0, 0}, "the file is larger than " +
                                                    std::to_string(kMaxConfigBytes) + " bytes"});
    return result;
  }
  const YamlSource source{text, file};
  auto root = source.parse({.max_depth = 64, .max_nodes = 100'000, .max_expanded_nodes = 1'000'000},
                           result.diagnostics);
  reword_parse_errors(result.diagnostics);
  if (!root) return result;
  try {
    ConfigParser parser{source, env, base_dir, result.diagnostics};
    result.config = parser.parse(*root);
  } catch (const std::exception& e) {
    // yaml-cpp conversions should not throw on checked nodes; never let one escape.
    result.diagnostics.push_back({{file, 0, 0}, std::string{"internal error while validating: "} + e.what()});
    result.config.reset();
  }
  sort_by_position(result.diagnostics);
  if (!result.diagnostics.empty()) result.config.reset();
  return result;
}

LoadedConfig load_agent_config(const std::filesystem::path& file, const Environment& env) {
  const std::string name = file.string();
  std::ifstream in{file, std::ios::binary};
  if (!in) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(file, ec);
    LoadedConfig result;
    result.diagnostics.push_back(
        {{name, 0, 0}, exists ? "cannot read the file: permission denied" : "no such file"});
    return result;
  }
  // One byte more than allowed, so an oversized file is reported as such.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  const auto base_dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path{"."};
  return parse_agent_config(text, name, base_dir, env);
}

}  // namespace sandci::agent::config
