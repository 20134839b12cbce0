#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <thread>

#include "agent/cli/cli.h"
#include "agent/cli/local_run.h"
#include "agent/runner/secret_masker.h"

namespace sandci::agent {
namespace {

// "NAME=VALUE" -> pair; CLI11 validates the shape before this runs.
std::pair<std::string, std::string> split_assignment(const std::string& text) {
  auto eq = text.find('=');
  return {text.substr(0, eq), eq == std::string::npos ? "" : text.substr(eq + 1)};
}

const auto kAssignment = CLI::Validator(
    [](std::string& value) -> std::string {
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return "expected NAME=VALUE, got '" + value + "'";
      return {};
    },
    "NAME=VALUE");

// SIGINT and SIGTERM cancel the run: they are blocked in every thread and taken
// by one watcher thread, so no thread is interrupted half-way through a write.
// The watcher sleeps in sigwaitinfo (no polling); the destructor wakes it with a
// SIGTERM queued to that thread alone, marked with this process's pid and a
// value of its own, so that the end of a run is never taken for a cancel nor
// waits for a tick.
class CancelOnSignals {
 public:
  explicit CancelOnSignals(std::atomic<bool>& cancel) : cancel_(cancel) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      for (;;) {
        siginfo_t info{};
        if (sigwaitinfo(&set_, &info) < 0) continue;  // EINTR
        if (info.si_code == SI_QUEUE && info.si_pid == getpid() && info.si_value.sival_int == kStop) return;
        if (!cancel_) std::cerr << "\nsandci: cancelling the run (stopping sandboxes)...\n";
        cancel_ = true;
      }
    });
  }
  ~CancelOnSignals() {
    pthread_sigqueue(thread_.native_handle(), SIGTERM, sigval{.sival_int = kStop});
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  static constexpr int kStop = 0x5ac1;
  std::atomic<bool>& cancel_;
  sigset_t set_{}, old_{};
  std::thread thread_;
};

}  // namespace

void add_run_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("run", "Run a repository's workflow locally, every job in a gVisor sandbox");
  auto opts = std::make_shared<LocalRunOptions>();
  auto raw = std::make_shared<std::map<std::string, std::vector<std::string>>>();
  auto dir = std::make_shared<std::string>(".");
  auto state = std::make_shared<std::string>();
  auto logs = std::make_shared<std::string>();
  cmd->add_option("dir", *dir, "The repository folder")->capture_default_str();
  cmd->add_flag("--dirty", opts->dirty, "Run the working tree as it is instead of the committed HEAD");
  cmd->add_option("--event", opts->event, "push, pull_request, pull_request_target, workflow_dispatch or schedule")
      ->capture_default_str()
      ->check(CLI::IsMember({"push", "pull_request", "pull_request_target", "workflow_dispatch", "schedule"}));
  cmd->add_option("--schedule", opts->schedule,
                  "schedule: the cron line that fires (default: the only one the workflows have)");
  cmd->add_option("--ref", opts->ref, "The ref the event is for (default: HEAD's branch)");
  cmd->add_option("--base", opts->base, "pull_request(_target): the base branch")->capture_default_str();
  cmd->add_option("--job", opts->jobs, "Run only this job and what it needs (repeatable)");
  cmd->add_option("--matrix", (*raw)["matrix"], "Only matrix combinations with key=value (repeatable)")
      ->check(kAssignment);
  // Not checked by CLI11: its error would quote the value, which is a secret.
  cmd->add_option("--secret", (*raw)["secret"], "A secret NAME=VALUE (repeatable; masked in all output)");
  cmd->add_option("--secrets-file", opts->secrets_files, "A file of NAME=VALUE secrets (repeatable)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--input", (*raw)["input"], "workflow_dispatch input NAME=VALUE (repeatable)")
      ->check(kAssignment);
  cmd->add_option("--label", (*raw)["label"], "Map a runs-on LABEL=IMAGE (repeatable)")->check(kAssignment);
  cmd->add_option("--image", opts->default_image, "The default job image")->capture_default_str();
  cmd->add_option("--backend", opts->backend,
                  "runsc (gVisor driven directly) or docker (the Docker engine, runtime runsc)")
      ->capture_default_str()
      ->check(CLI::IsMember({"runsc", "docker"}));
  cmd->add_option("--docker-socket", opts->docker_socket,
                  "docker: the engine's socket (default: DOCKER_HOST, else /var/run/docker.sock)");
  cmd->add_option("--docker-egress-runtime", opts->docker_egress_runtime,
                  "docker: the engine's runtime for jobs given --allow-host, runsc registered with "
                  "--network=sandbox (docs/security.md, \"Egress on the Docker backend\")");
  cmd->add_option("--max-parallel", opts->max_parallel, "Jobs at once (default: the number of cores)");
  cmd->add_option("--memory", opts->memory_mib, "Memory limit per job, in MiB")->capture_default_str();
  cmd->add_option("--logs", *logs, "Folder for the job logs (default: under the state dir)");
  cmd->add_option("--state-dir", *state, "State folder (default: $SANDCI_STATE_DIR or /var/lib/sandci)");
  cmd->add_option("--actions-source", opts->actions_source,
                  "Where uses: owner/repo@ref is fetched from, as <URL>/<owner>/<repo> "
                  "(default: $SANDCI_ACTIONS_SOURCE, else https://github.com)");
  cmd->add_option("--allow-host", opts->allow_hosts,
                  "Let the jobs reach this host (a name or *.domain) through the egress proxy (repeatable; "
                  "default: no network)");
  cmd->add_option("--allow-port", opts->allow_ports, "A port --allow-host grants (repeatable; default: 80 and 443)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--egress-hosts-file", opts->egress_hosts_file,
                  "The egress proxy resolves names from this hosts-format file only (tests, air-gapped mirrors)");
  cmd->add_flag("--plain", opts->plain, "Plain [job] lines even on a terminal");
  cmd->add_flag("--timings", opts->timings, "After the summary, where each job's time went, phase by phase");
  cmd->add_option("--warm", opts->warm,
                  "Sandboxes started ahead for the workflow's next jobs of the same image and mounts (the first one "
                  "while the checkout is written), each made for one job only and never more than the jobs still to "
                  "come (0: every job starts its own)")
      ->capture_default_str();
  cmd->add_option("--keep-runs", opts->keep_runs, "Run folders kept under <state>/runs, this one included")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--cache-mib", opts->cache_mib,
                  "actions/cache entries kept per repository under <state>/cache (least recently used go first)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30));
  cmd->add_option("--repository", opts->repository,
                  "github.repository as OWNER/NAME (default: from the origin remote's URL, else local/<folder>); "
                  "jobs guarded by `if: github.repository == 'owner/name'` need it")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return repository_from_url(v) == v ? std::string() : std::string("must be OWNER/NAME");
          },
          "OWNER/NAME"));
  cmd->add_option("--repository-base", opts->repository_base,
                  "Where actions/checkout finds `repository: owner/name`: <base>/owner/name, a URL or a folder "
                  "(default: a sibling folder ../name)");
  // A repeatable option takes one value per occurrence, so a folder after it is
  // never taken as a second value: `sandci run --job build .` runs job build in ".".
  for (const char* name : {"--job", "--matrix", "--secret", "--secrets-file", "--input", "--label", "--allow-host",
                           "--allow-port"})
    cmd->get_option(name)->allow_extra_args(false);
  cmd->callback([&action, opts, raw, dir, state, logs] {
    action = [opts, raw, dir, state, logs] {
      LocalRunOptions options = *opts;
      options.dir = *dir;
      options.state_dir = *state;
      options.logs_dir = *logs;
      for (const auto& m : (*raw)["matrix"]) options.matrix.push_back(split_assignment(m));
      for (const auto& s : (*raw)["secret"]) {
        auto secret = parse_secret_assignment(s);
        if (!secret) {
          std::cerr << "sandci run: --secret: " << secret.error() << "\n";
          return static_cast<int>(kExitUsage);
        }
        options.secrets.push_back(std::move(*secret));
      }
      for (const auto& i : (*raw)["input"]) options.inputs.push_back(split_assignment(i));
      for (const auto& l : (*raw)["label"]) options.labels.insert(split_assignment(l));
      std::atomic<bool> cancel{false};
      CancelOnSignals signals(cancel);
      return run_local(options, cancel);
    };
  });
}

}  // namespace sandci::agent
