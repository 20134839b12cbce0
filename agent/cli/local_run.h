#pragma once
// `sandci run`: runs the workflows of a local repository for one event, every job
// in its own gVisor sandbox, with the committed HEAD (or the working tree) as the
// checkout.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandci::agent {

struct LocalRunOptions {
  std::filesystem::path dir = ".";
  bool dirty = false;             // run the working tree as it is, not HEAD
  std::string event = "push";  // push, pull_request, pull_request_target, workflow_dispatch, schedule
  std::string ref;                // default: HEAD's branch
  std::string base = "main";      // pull_request(_target): the base branch
  // schedule: the cron line that fires (github.event.schedule); empty: the only one
  // the workflows have (several: a usage error listing them).
  std::string schedule;
  std::vector<std::string> jobs;  // run only these jobs and what they need
  std::vector<std::pair<std::string, std::string>> matrix;  // key=value filters
  std::vector<std::pair<std::string, std::string>> secrets;
  std::vector<std::filesystem::path> secrets_files;
  std::vector<std::pair<std::string, std::string>> inputs;  // workflow_dispatch inputs
  std::map<std::string, std::string> labels;  // runs-on label -> image, over <state>/labels.conf
  std::string default_image = "debian:12";
  std::filesystem::path state_dir;  // default: $SANDCI_STATE_DIR or /var/lib/sandci
  std::filesystem::path logs_dir;   // default: <state>/runs/<run id>/logs
  std::size_t max_parallel = 0;     // 0: the number of cores
  std::uint64_t memory_mib = 4096;  // per job
  bool plain = false;               // plain lines even on a terminal
  bool timings = false;             // print each job's phase timings after the summary
  // Sandboxes started ahead for a workflow's next jobs, per spec (0: none); never
  // more than the plan's jobs still to come, so a one-job run starts no extra one.
  std::size_t warm = 2;
  std::size_t keep_runs = 20;       // run folders kept under <state>/runs, this one included
  // Where `uses: owner/repo@ref` is fetched from (cached under <state>/actions);
  // empty: $SANDCI_ACTIONS_SOURCE, else https://github.com.
  std::string actions_source;
  std::uint64_t cache_mib = 2048;   // actions/cache entries kept per repository under <state>/cache
  // Where actions/checkout finds `repository: owner/name`: <base>/owner/name (a URL
  // or a folder). Empty: a sibling folder of the repository, ../name.
  std::string repository_base;
  // `github.repository` (owner/name). Empty: from the `origin` remote's URL, else
  // local/<folder>.
  std::string repository;
  // "runsc" (default) or "docker": the Docker engine, runtime runsc, at
  // docker_socket (empty: DOCKER_HOST, else /var/run/docker.sock). With docker the
  // engine must hold images named as the image store's (docs/images.md).
  std::string backend = "runsc";
  std::string docker_socket;
  // docker: the engine's runtime for jobs given --allow-host (runsc registered
  // with --network=sandbox: scripts/runsc-egress; docs/security.md). Empty: such
  // a run is a usage error on the docker backend.
  std::string docker_egress_runtime;
  // --allow-host / --allow-port: the jobs' egress grant (docs/security.md). No
  // host: no network at all, as always.
  std::vector<std::string> allow_hosts;
  std::vector<std::uint16_t> allow_ports;  // empty: 80 and 443
  // --egress-hosts-file: the proxy resolves names from this file only (tests,
  // air-gapped mirrors).
  std::filesystem::path egress_hosts_file;
};

// Runs it; returns the exit code (0 every job succeeded, 1 a job failed,
// 2 usage or validation error, 130 cancelled). `cancel` is polled: setting it
// (Ctrl-C) stops the run, kills the sandboxes and cleans up. Prints to stdout
// (progress) and stderr (errors).
int run_local(const LocalRunOptions& options, std::atomic<bool>& cancel);

// Reads the runs-on label map: `LABEL = IMAGE` lines, `#` comments. A missing
// file is an empty map.
std::expected<std::map<std::string, std::string>, std::string> read_labels_file(
    const std::filesystem::path& file);

// "owner/name" from a remote URL as git takes them (https://host/owner/name.git,
// git@host:owner/name, ssh://git@host:2222/group/owner/name, a folder path); nullopt
// when it has no two path segments.
std::optional<std::string> repository_from_url(std::string_view url);

// Reads a secrets file: NAME=VALUE lines and NAME<<DELIM heredocs, as $GITHUB_ENV.
std::expected<std::vector<std::pair<std::string, std::string>>, std::string> read_secrets_file(
    const std::filesystem::path& file);

}  // namespace sandci::agent
