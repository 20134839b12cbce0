#pragma once
// The agent's configuration (`sandci serve --config FILE`), as loaded and checked by
// load_agent_config (config_loader.h). Every value here has passed validation:
// URLs parse, files existed at start-up, secrets were read.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/secret.h"
#include "agent/egress/egress_grant.h"
#include "git/credentials.h"

namespace sandci::agent::config {

enum class Forge { kGithub, kGitea, kForgejo, kGitlab };
// "github", "gitea", "forgejo", "gitlab".
std::string_view to_string(Forge forge);
std::optional<Forge> parse_forge(std::string_view name);

// The events a repository builds on: webhooks ("push", "pull_request", "tag") and the
// agent's own clock ("schedule": the `schedule:` workflows of its default branch).
enum class RepositoryEvent { kPush, kPullRequest, kTag, kSchedule };
std::string_view to_string(RepositoryEvent event);
std::optional<RepositoryEvent> parse_repository_event(std::string_view name);

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
std::string_view to_string(LogLevel level);

// What happens at start-up to runs a crash cut off: run again, or end as errored.
enum class InterruptedRuns { kRequeue, kError };

struct ListenAddress {
  std::string host = "127.0.0.1";  // an IP address; IPv6 without brackets
  std::uint16_t port = 8080;

  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
};

// "IPv4:port" or "[IPv6]:port" with a port from 1 to 65535; the host must be an IP
// address (a name could resolve to several, or to another address later).
std::expected<ListenAddress, std::string> parse_listen_address(std::string_view text);

struct TlsFiles {
  std::filesystem::path cert;  // PEM certificate chain
  std::filesystem::path key;   // PEM private key
};

struct Limits {
  std::uint64_t job_memory_mib = 4096;
  std::uint64_t job_log_mib = 64;
  std::uint64_t webhook_body_mib = 25;
  std::uint64_t cache_mib = 10240;  // actions/cache entries kept per repository (LRU beyond)
  // /readyz says not ready when the state folder's file system has less free space.
  std::uint64_t state_min_free_mib = 1024;
};

// What retention does with the rows of a run whose logs and artifacts it removed.
enum class KeepRows { kSummary, kRemove };

// Finished runs' logs and artifacts (<state_dir>/runs/<id>) older than max_age_days,
// or beyond disk_budget_mib all together, are removed oldest first; every
// interval_minutes and at start-up. Remote actions' trees and mirrors
// (<state_dir>/actions) not used for actions_days are removed by the same pass.
struct RetentionConfig {
  std::uint64_t max_age_days = 30;
  std::uint64_t actions_days = 30;
  std::uint64_t disk_budget_mib = 10240;
  KeepRows keep_rows = KeepRows::kSummary;  // summary: rows stay, marked expired
  std::uint64_t interval_minutes = 60;
};

struct StatusOptions {
  std::filesystem::path ca_file;  // empty: the system's CA store
};

struct JobSecret {
  std::string name;  // as jobs see it: ${{ secrets.NAME }}
  Secret value;
};

struct RepositoryConfig {
  std::string name;  // GitHub/Gitea/Forgejo full name; GitLab path_with_namespace
  Forge forge = Forge::kGithub;
  std::string api_url;                  // without a trailing slash
  std::optional<std::int64_t> project_id;  // GitLab only (always set there)
  Secret webhook_secret;
  Secret api_token;
  std::string clone_url;  // empty: the URL the webhook names
  git::Credentials clone;
  std::vector<JobSecret> secrets;  // in file order; not given to fork pull requests
  std::vector<RepositoryEvent> events{RepositoryEvent::kPush, RepositoryEvent::kPullRequest,
                                      RepositoryEvent::kSchedule};
  // The branch whose HEAD's `schedule:` workflows the agent runs.
  std::string default_branch = "main";
  bool cancel_superseded = true;  // a new push to a branch cancels its older run
  // `pages: public`: anyone may see this repository's runs and logs. Otherwise (the
  // default) only a viewer token (global or this repository's) or the admin token does.
  bool pages_public = false;
  std::vector<Secret> viewer_tokens;  // see this repository's pages only
  // `egress:` the hosts and ports this repository's jobs may reach through the
  // egress proxy (docs/security.md). Unset: its jobs have no network at all.
  // Only from this file, never from a workflow.
  std::optional<egress::EgressGrant> egress;

  bool handles(RepositoryEvent event) const;
};

// Where `uses: owner/repo@ref` (actions, reusable workflows) is fetched from.
struct ActionsConfig {
  // Base URL: owner/repo is fetched from <source>/<owner>/<repo>, or from the
  // source with {owner} and {repo} replaced when it names them.
  std::string source = "https://github.com";
  // For the source; empty: anonymous, unless the source is on the same server as a
  // run's repository, whose clone credentials are then used.
  git::Credentials clone;
};

// Which isolation runs the jobs (docs/security.md compares them).
enum class SandboxBackendKind { kRunsc, kDocker };
std::string_view to_string(SandboxBackendKind kind);

// sandbox.warm: its default and its most (each warm sandbox holds memory).
// A sandbox started ahead holds one of the agent's `capacity` slots (started
// only when one is free, given back to a job that waits), so warm sandboxes
// never make more sandboxes exist than `capacity`.
inline constexpr std::size_t kDefaultWarmSandboxes = 1;
inline constexpr std::int64_t kMaxWarmSandboxes = 16;

struct SandboxConfig {
  SandboxBackendKind backend = SandboxBackendKind::kRunsc;
  // Docker only. Empty: DOCKER_HOST (unix://PATH), else /var/run/docker.sock.
  std::filesystem::path docker_socket;
  // The engine's runtime for jobs. Anything but runsc needs
  // docker_allow_other_runtime: true (runc, say, shares the host kernel).
  std::string docker_runtime = "runsc";
  bool docker_allow_other_runtime = false;
  // The engine's runtime for jobs granted egress: runsc registered with
  // --network=sandbox (scripts/runsc-egress). Empty: such jobs are refused on
  // the docker backend (docs/security.md, "Egress on the Docker backend").
  std::string docker_egress_runtime;
  bool docker_pull = false;  // pull a missing image; off: a missing image fails the job
  // Sandboxes started ahead for the next jobs of a workflow, per sandbox spec
  // (sandbox/warm_pool.h): never shared, never more than the plan's jobs still
  // to come; and, when not 0, the first job's started while the checkout is
  // written. 0: every job starts its sandbox when it starts.
  std::size_t warm = kDefaultWarmSandboxes;
};

struct AgentConfig {
  ListenAddress listen;
  std::optional<TlsFiles> tls;
  std::string public_url;  // http(s), without a trailing slash
  std::filesystem::path state_dir;
  unsigned capacity = 1;  // jobs at once across all runs
  LogLevel log_level = LogLevel::kInfo;
  std::string default_image = "debian:12";
  std::map<std::string, std::string> labels;  // runs-on label -> image
  Limits limits;
  unsigned shutdown_grace_seconds = 60;
  InterruptedRuns interrupted_runs = InterruptedRuns::kRequeue;
  StatusOptions status;
  std::optional<Secret> admin_token;
  std::vector<Secret> viewer_tokens;  // see every repository's pages (never admin actions)
  unsigned login_hours = 168;  // how long a login on the pages (its cookie) lasts
  std::vector<RepositoryConfig> repositories;  // names unique per forge
  ActionsConfig actions;
  RetentionConfig retention;
  SandboxConfig sandbox;
  // Non-empty: the egress proxy resolves names from this /etc/hosts-format file
  // only, never the system resolver (tests, air-gapped mirrors).
  std::filesystem::path egress_hosts_file;
  // Non-empty: a network namespace (/run/netns/NAME) in which the egress proxy
  // makes its outbound connections, e.g. one whose only route is a firewall the
  // operator keeps; empty: the agent's own namespace.
  std::filesystem::path egress_netns;

  // The repository `name` on `forge` (names compared without regard to ASCII case,
  // as forges do); nullptr when none is configured.
  const RepositoryConfig* find_repository(Forge forge, std::string_view name) const;

  // "<public_url>/runs/<id>": the link commit statuses carry.
  std::string run_url(std::string_view run_id) const;

  // Every secret value (admin token, viewer tokens, webhook secrets, API and clone tokens, job
  // secrets, the actions source's token), for the log masker.
  std::vector<std::string> secret_values() const;
};

}  // namespace sandci::agent::config
