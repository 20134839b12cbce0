#include "agent/server/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "agent/config/config_loader.h"
#include "agent/config/live_config.h"
#include "agent/http/http_client.h"
#include "agent/http/http_server.h"
#include "agent/runner/job_slots.h"
#include "agent/server/agent_log.h"
#include "agent/server/repository_glue.h"
#include "agent/server/retention.h"
#include "agent/server/routes.h"
#include "agent/server/run_reporter.h"
#include "agent/server/run_worker.h"
#include "agent/server/schedule_runner.h"
#include "agent/server/schedule_source.h"
#include "agent/server/session_key.h"
#include "agent/server/status_sender.h"
#include "agent/server/systemd_notify.h"
#include "agent/server/webhook_intake.h"
#include "agent/store/run_store.h"
#include "sandbox/image_store.h"
#include "sandbox/docker_backend.h"
#include "sandbox/runsc_backend.h"

namespace sandci::agent::server {
namespace fs = std::filesystem;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// This agent's name on its claims: stable across restarts, so that the next start
// finds the runs its previous life left running.
std::string agent_owner() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string("sandci@") + host;
}

// Runs interrupted by a crash: re-queued (they run again from the start), or
// ended in error with their unfinished jobs' statuses saying so.
void recover_runs(const config::AgentConfig& config, store::RunStore& store, const std::string& owner) {
  const bool requeue = config.interrupted_runs == config::InterruptedRuns::kRequeue;
  auto recovered = store.recover(owner, requeue, now_ms());
  if (!recovered) {
    spdlog::error("event=recovery_failed error=\"{}\"", recovered.error().message);
    return;
  }
  for (const auto& run : *recovered) {
    spdlog::warn("event=run_interrupted run={} repository={} action={}", run.id, run.repository,
                 requeue ? "requeued" : "error");
    if (requeue) continue;
    const auto* repo = find_repository(config, run.forge, run.repository);
    auto jobs = store.jobs_of(run.id);
    if (!repo || !jobs) continue;
    for (const auto& job : *jobs) {
      if (job.state != store::JobState::error) continue;
      const std::string wire(forge::forge_state(forge_kind(repo->forge), forge::CommitState::error));
      store.put_status(run.repository, std::string(config::to_string(repo->forge)), run.sha,
                       job_context(job.workflow, job.name), wire, "Interrupted: the agent stopped",
                       config.run_url(std::to_string(run.id)), run.ref, now_ms());
    }
  }
}

// SIGTERM, SIGINT and SIGHUP are taken by sigtimedwait in the main loop, never by
// a handler interrupting some thread.
sigset_t block_loop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// The event loop answers: GET /healthz over loopback. A stalled loop stops the
// watchdog pings, and systemd restarts the agent.
bool loop_answers(http::HttpClient& client, bool tls, const std::string& address, std::uint16_t port) {
  if (tls) return true;  // the loop is checked only for plain HTTP listeners
  std::string host = address == "0.0.0.0" ? "127.0.0.1" : address;
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  http::ClientRequest request;
  request.url = "http://" + host + ":" + std::to_string(port) + "/healthz";
  request.timeout = std::chrono::seconds(5);
  auto answer = client.send(request);
  return answer && answer->status == 200;
}

std::string repository_key(const config::RepositoryConfig& repo) {
  return std::string(config::to_string(repo.forge)) + ":" + repo.name;
}

// "a,b" of the repositories in `from` that `other` lacks.
std::string missing_from(const config::AgentConfig& from, const config::AgentConfig& other) {
  std::string names;
  for (const auto& repo : from.repositories)
    if (!other.find_repository(repo.forge, repo.name)) names += (names.empty() ? "" : ",") + repository_key(repo);
  return names;
}

// SIGHUP: reads the configuration file again as at start-up (secrets included).
// With errors, the running configuration stays and every error is logged at
// file:line:col. Otherwise what can change live is taken for every webhook, status
// post, schedule and run from now on; keys that need a restart keep their running
// value and are logged. Running jobs keep the configuration they started with.
void reload(const fs::path& file, config::LiveConfig& live, SecretMasker& masker, SystemdNotifier& systemd) {
  systemd.reloading();
  spdlog::info("event=reloading file={}", file.string());
  auto loaded = config::load_agent_config(file, config::Environment::from_process());
  if (!loaded.ok()) {
    for (const auto& diagnostic : loaded.diagnostics)
      spdlog::error("event=reload_error error=\"{}\"", diagnostic.to_string());
    spdlog::error("event=reload_failed file={} errors={} action=\"kept the running configuration\"", file.string(),
                  loaded.diagnostics.size());
    systemd.ready("reload failed: kept the running configuration");
    return;
  }
  const auto running = live.current();
  auto plan = config::plan_reload(*running, std::move(*loaded.config));
  // Before any part can use a new secret: the log must already mask it.
  for (const auto& value : plan.config.secret_values()) masker.add(value);
  for (const auto& key : plan.needs_restart)
    spdlog::warn("event=config_needs_restart key={} action=\"kept the running value: needs a restart\"", key);
  const std::string added = missing_from(plan.config, *running);
  const std::string removed = missing_from(*running, plan.config);
  spdlog::default_logger()->set_level(spdlog::level::from_str(std::string(config::to_string(plan.config.log_level))));
  const std::size_t repositories = plan.config.repositories.size();
  live.replace(std::move(plan.config));
  spdlog::info("event=config_reloaded file={} repositories={} added=\"{}\" removed=\"{}\" needs_restart={}",
               file.string(), repositories, added, removed, plan.needs_restart.size());
  systemd.ready("configuration reloaded");
}

// The configured sandbox backend (sandbox.backend): runsc, or the Docker engine.
// What the start-up reap removed of a crashed agent's sandboxes, and each thing
// it could not remove (left for the next start; the agent starts anyway).
void log_reap(const sandbox::ReapReport& report) {
  if (report.containers + report.bundles + report.cgroups > 0)
    spdlog::info("event=reaped backend=runsc sandboxes={} bundles={} cgroups={}", report.containers, report.bundles,
                 report.cgroups);
  for (const auto& error : report.errors) spdlog::warn("event=reap_failed backend=runsc error=\"{}\"", error);
}

std::expected<std::unique_ptr<sandbox::SandboxBackend>, sandbox::SandboxError> open_sandbox_backend(
    const config::AgentConfig& config) {
  if (config.sandbox.backend == config::SandboxBackendKind::kDocker) {
    sandbox::DockerOptions docker;
    docker.socket = config.sandbox.docker_socket.string();
    docker.runtime = config.sandbox.docker_runtime;
    docker.egress_runtime = config.sandbox.docker_egress_runtime;
    docker.allow_pull = config.sandbox.docker_pull;
    auto opened = sandbox::DockerBackend::open(docker);
    if (!opened) return std::unexpected(opened.error());
    // What a crashed agent left stays, and is tried again at the next start.
    if (const auto& failed = (*opened)->startup_reap_error(); !failed.empty())
      spdlog::warn("event=reap_failed backend=docker error=\"{}\"", failed);
    return std::unique_ptr<sandbox::SandboxBackend>(std::move(*opened));
  }
  sandbox::RunscOptions runsc;
  runsc.state_dir = (config.state_dir / "sandbox").string();
  auto opened = sandbox::RunscBackend::open(runsc);
  if (!opened) return std::unexpected(opened.error());
  log_reap((*opened)->startup_reap());
  return std::unique_ptr<sandbox::SandboxBackend>(std::move(*opened));
}

// The login cookies' key from <state_dir>/session.key (made at the first start),
// with what happened to the file logged; the key itself never is. Nullopt (logged)
// when no key can be written: the agent does not start.
std::optional<std::string> open_session_key(const fs::path& state_dir) {
  const fs::path file = state_dir / kSessionKeyFile;
  auto key = load_session_key(file);
  if (!key) {
    spdlog::critical("event=start_failed reason=session_key error=\"{}\"", key.error());
    return std::nullopt;
  }
  if (!key->folder_problem.empty())
    spdlog::warn("event=state_dir_writable_by_others state_dir={} problem=\"{}\"", state_dir.string(), key->folder_problem);
  if (key->created)
    spdlog::info("event=session_key_created file={} note=\"no key yet: login cookies from before do not work\"",
                 file.string());
  if (!key->replaced_because.empty())
    spdlog::warn("event=session_key_replaced file={} reason=\"{}\" action=\"wrote a new key: everyone logs in "
                 "again\"",
                 file.string(), key->replaced_because);
  return std::move(key->bytes);
}

}  // namespace

int serve(const config::AgentConfig& config, const fs::path& config_file) {
  sigset_t loop_signals = block_loop_signals();
  auto masker = std::make_shared<SecretMasker>();
  for (const auto& value : config.secret_values()) masker->add(value);
  init_agent_log(std::string(config::to_string(config.log_level)), masker);
  SystemdNotifier systemd;
  // The parts below read `live` per piece of work; `config` itself holds the
  // start-up values (listener, folders, capacity) that a reload never changes.
  config::LiveConfig live(config);

  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  auto store = store::open_sqlite_store(config.state_dir / "agent.db");
  if (!store) {
    spdlog::critical("event=start_failed reason=store error=\"{}\"", store.error().message);
    return 1;
  }
  auto session_key = open_session_key(config.state_dir);
  if (!session_key) return 1;
  auto backend = open_sandbox_backend(config);
  if (!backend) {
    spdlog::critical("event=start_failed reason={} error=\"{}\"", config::to_string(config.sandbox.backend),
                     backend.error().message);
    return 1;
  }
  const std::string owner = agent_owner();
  recover_runs(config, **store, owner);

  sandbox::ImageStore images(config.state_dir);
  JobSlots slots(config.capacity);
  http::ClientOptions client_options;
  client_options.ca_file = config.status.ca_file;
  http::HttpClient client(client_options);
  Metrics metrics;
  StatusSender sender(live, **store, client, {}, now_ms, &metrics);
  WorkerOptions worker_options;
  worker_options.owner = owner;
  worker_options.runs_at_once = config.capacity;
  RunWorker worker(live, **store, **backend, images, slots, worker_options, now_ms, [&sender] { sender.wake(); },
                   &metrics);
  ScheduleSource schedule_source(config.state_dir / "git", config.state_dir / "schedules");
  ScheduleRunner schedules(
      live, **store,
      [&schedule_source](const config::RepositoryConfig& repo, const std::string& url) {
        return schedule_source.read(repo, url);
      },
      now_ms, [&worker](std::int64_t) { worker.wake(); });
  WebhookIntake intake(live, **store, now_ms, [&worker, &sender](std::int64_t id, const std::vector<std::int64_t>& older) {
    for (auto old : older) worker.cancel_run(old, "superseded by run " + std::to_string(id));
    worker.wake();
    sender.wake();  // statuses a superseded queued run left pending were just ended
  }, &metrics);
  Readiness readiness(**store, ReadinessOptions{.state_dir = config.state_dir,
                                               .min_free_bytes = config.limits.state_min_free_mib << 20,
                                               .probe_runsc = [] { return probe_runsc_binary(sandbox::RunscOptions{}.runsc); }});
  Routes routes(live, **store, intake, now_ms, [&worker](std::int64_t) { worker.wake(); }, &metrics, &slots,
                &readiness, std::move(*session_key));
  // Each live sandbox keeps a bundle folder until it is destroyed, so the folders also
  // show sandboxes that a crash left behind (until the next start reaps them).
  if (auto* runsc = dynamic_cast<sandbox::RunscBackend*>(backend->get())) {
    routes.count_sandboxes_with([bundles = runsc->bundles_dir()] {
      std::error_code error;
      std::int64_t count = 0;
      for (fs::directory_iterator it(bundles, error), end; !error && it != end; it.increment(error)) ++count;
      return count;
    });
  } else if (auto* docker = dynamic_cast<sandbox::DockerBackend*>(backend->get())) {
    // The engine's containers labelled by sandci (a crashed agent's too, until reaped).
    routes.count_sandboxes_with([client = docker->client()] {
      auto listed = client.call_json("GET", "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22sandci.owner%22%5D%7D",
                                     nullptr, "listing sandci's containers");
      return listed && listed->is_array() ? static_cast<std::int64_t>(listed->size()) : std::int64_t{0};
    });
  }

  http::HttpServerOptions server_options;
  server_options.address = config.listen.host;
  server_options.port = config.listen.port;
  auto adopted = systemd_listen_socket();
  if (!adopted) {
    spdlog::critical("event=start_failed reason=listen error=\"{}\"", adopted.error());
    return 1;
  }
  if (*adopted) server_options.listen_fd = **adopted;
  if (config.tls) server_options.tls = http::TlsFiles{config.tls->cert, config.tls->key};
  server_options.max_body_bytes = config.limits.webhook_body_mib << 20;
  // Bounds the memory a flood of full-size bodies can take (64 x 25 MiB by default).
  server_options.max_connections = 64;
  // A delivery that starts no run is answered from the store's writer thread once
  // committed (no handler waits for its fsync); one that starts a run still waits on
  // its handler thread: more of them let more such deliveries share one fsync.
  server_options.handler_threads = 32;
  server_options.log = [](const std::string& line) { spdlog::info("event=http {}", line); };
  // A socket systemd passed is listening before we start, so a client can be
  // answered as soon as the server's threads run: requests wait until the agent
  // has logged that it listens (and started its workers), so that whoever got an
  // answer finds the `event=listening` line. The promise is destroyed before the
  // server on every way out (a broken promise also ends the wait).
  auto serving = std::make_unique<std::promise<void>>();
  std::shared_future<void> served = serving->get_future().share();
  auto server = http::HttpServer::start(server_options, [&routes, served](http::HttpRequest request,
                                                                          http::Responder respond) {
    served.wait();
    routes.handle_async(request, std::move(respond));
  });
  const auto serving_gate = std::move(serving);  // declared after the server: destroyed before it
  if (!server) {
    spdlog::critical("event=start_failed reason=listen address={} error=\"{}\"",
                     *adopted ? "systemd socket" : config.listen.to_string(), server.error());
    return 1;
  }
  sender.start();
  worker.start();
  schedules.start();
  Retention retention(live, **store, now_ms, &metrics);
  retention.start();
  const std::uint16_t port = (*server)->port();
  const std::string address = (*server)->address();
  spdlog::info("event=listening address={}:{} from={} tls={} repositories={} capacity={}", address, port,
               *adopted ? "systemd" : "config", config.tls ? "on" : "off", config.repositories.size(), config.capacity);
  serving_gate->set_value();
  systemd.ready("listening on port " + std::to_string(port));

  const auto watchdog = systemd.watchdog_interval();
  const auto tick = watchdog ? std::min(*watchdog, std::chrono::milliseconds(1000)) : std::chrono::milliseconds(1000);
  auto next_ping = std::chrono::steady_clock::now();
  for (;;) {
    timespec wait{static_cast<time_t>(tick.count() / 1000), static_cast<long>((tick.count() % 1000) * 1'000'000)};
    const int signal_number = sigtimedwait(&loop_signals, nullptr, &wait);
    if (signal_number == SIGHUP) {
      if (config_file.empty()) spdlog::warn("event=reload_skipped reason=\"no configuration file to re-read\"");
      else reload(config_file, live, *masker, systemd);
      continue;
    }
    if (signal_number == SIGTERM || signal_number == SIGINT) {
      spdlog::info("event=stopping signal={} running_runs={}", signal_number == SIGTERM ? "TERM" : "INT",
                   worker.active_runs());
      break;
    }
    if (watchdog && std::chrono::steady_clock::now() >= next_ping) {
      if (loop_answers(client, config.tls.has_value(), address, port)) systemd.watchdog();
      else spdlog::warn("event=watchdog_skipped reason=\"the HTTP loop did not answer\"");
      next_ping = std::chrono::steady_clock::now() + *watchdog;
    }
  }

  systemd.stopping();
  (*server)->stop_accepting();
  retention.stop();
  schedules.stop();
  worker.drain(std::chrono::seconds(live.current()->shutdown_grace_seconds));
  sender.stop();
  sender.send_due();  // one last try; what is left stays in the outbox for the next start
  (*server)->stop();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace sandci::agent::server
