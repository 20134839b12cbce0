#include "agent/server/run_worker.h"

#include <spdlog/spdlog.h>

#include "agent/runner/job_image.h"
#include "agent/runner/run_engine.h"
#include "agent/runner/secret_masker.h"
#include "agent/server/admin_selection.h"
#include "agent/server/log_files.h"
#include "agent/server/remove_on_exit.h"
#include "agent/server/repository_glue.h"
#include "agent/server/run_reporter.h"
#include "git/local_repo.h"
#include "git/url.h"
#include "sandbox/image_presets.h"

namespace sandci::agent::server {
namespace fs = std::filesystem;
using forge::CommitState;

namespace {

// Leaves the concurrency groups a run entered, however the run ends.
struct LeaveGroups {
  ConcurrencyGroups& groups;
  std::vector<std::string> entered;
  std::int64_t run_id;
  ~LeaveGroups() {
    for (const auto& group : entered) groups.leave(group, run_id);
  }
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

sandbox::ResourceLimits job_limits(const config::AgentConfig& config) {
  sandbox::ResourceLimits limits;
  limits.memory_bytes = static_cast<std::uint64_t>(config.limits.job_memory_mib) << 20;
  return limits;
}

// The run's event payload as jobs see it ($GITHUB_EVENT_PATH): the stored one,
// or {} when it cannot be read.
nlohmann::json run_payload(const store::RunRecord& run) {
  auto payload = nlohmann::json::parse(run.payload_json, nullptr, false);
  return payload.is_discarded() ? nlohmann::json::object() : payload;
}

// Whether a job of the plan may take a sandbox of the default image with no
// action mounts: the prestarted sandbox's spec.
bool some_job_in(const PreparedRun& prepared, const RunEnvironment& env) {
  for (const auto& w : prepared.workflows) {
    const auto counts = planned_jobs_by_image(w.plan, env.default_image, env.labels);
    if (auto it = counts.find(env.default_image); it != counts.end() && it->second > 0) return true;
  }
  return false;
}

// The credentials a run fetches its remote actions with: the actions section's when
// it has some (the cache's default); else the repository's own when the actions
// source is on the same server, as a forge's mirror organisation is; else none.
// A fork's pull request never gets ours.
std::optional<git::Credentials> action_credentials(const config::AgentConfig& config,
                                                   const config::RepositoryConfig& repo,
                                                   const store::RunRecord& run) {
  const git::Credentials& own = config.actions.clone;
  if (own.https || own.ssh || run.from_fork) return std::nullopt;
  const std::string url = repo.clone_url.empty() ? run.clone_url : repo.clone_url;
  if (git::same_server(config.actions.source, url)) return repo.clone;
  return std::nullopt;
}

// A pull_request_target run checks out the base, but its statuses belong on the pull
// request's head commit, where people look for them.
std::string status_sha(const store::RunRecord& run, const std::string& checked_out) {
  if (run.event != "pull_request_target") return checked_out;
  auto payload = nlohmann::json::parse(run.payload_json, nullptr, false);
  const auto* head = payload.is_object() && payload.contains("pull_request") && payload["pull_request"].is_object() &&
                             payload["pull_request"].contains("head") && payload["pull_request"]["head"].is_object()
                         ? &payload["pull_request"]["head"]
                         : nullptr;
  if (!head || !head->contains("sha") || !(*head)["sha"].is_string()) return checked_out;
  const std::string sha = (*head)["sha"].get<std::string>();
  const bool hex = sha.size() == 40 && sha.find_first_not_of("0123456789abcdef") == std::string::npos;
  return hex ? sha : checked_out;
}

// The run's message when some workflows could not run: each with its errors.
std::string broken_message(const PreparedRun& prepared) {
  if (prepared.broken.empty()) return "";
  std::string text = std::to_string(prepared.broken.size()) +
                     (prepared.broken.size() == 1 ? " workflow" : " workflows") + " could not run:";
  for (const auto& workflow : prepared.broken) {
    text += "\n" + workflow.file + ":";
    for (const auto& message : workflow.messages) text += "\n  " + message;
  }
  return text;
}

}  // namespace

RunWorker::RunWorker(config::ConfigRef config, store::RunStore& store, sandbox::SandboxBackend& backend,
                     sandbox::ImageStore& images, JobSlots& slots, WorkerOptions options, Now now,
                     std::function<void()> statuses_changed, Metrics* metrics)
    : config_(config), store_(store), backend_(backend), images_(images), slots_(slots),
      options_(std::move(options)), now_(std::move(now)), statuses_changed_(std::move(statuses_changed)),
      metrics_(metrics),
      mirrors_(config.get()->state_dir / "git"),
      actions_(ActionsOptions{.state_dir = config.get()->state_dir,
                              .source = config.get()->actions.source,
                              .credentials = config.get()->actions.clone}),
      cache_(config.get()->state_dir / "cache", config.get()->limits.cache_mib << 20),
      groups_([this](std::int64_t id, const std::string& why) { cancel_run(id, why); }) {}

RunWorker::~RunWorker() { drain(std::chrono::milliseconds(0)); }

void RunWorker::start() {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.runs_at_once); ++i)
    threads_.emplace_back([this] { work_loop(); });
  lease_thread_ = std::thread([this] { lease_loop(); });
}

void RunWorker::wake() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  wake_.notify_all();
}

void RunWorker::cancel_run(std::int64_t id, const std::string& why) {
  std::lock_guard lock(mutex_);
  auto it = active_.find(id);
  if (it == active_.end()) return;
  if (it->second->why.empty()) it->second->why = why;
  it->second->cancel = true;
}

std::size_t RunWorker::active_runs() const {
  std::lock_guard lock(mutex_);
  return active_.size();
}

void RunWorker::drain(std::chrono::milliseconds grace) {
  {
    std::unique_lock lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    wake_.notify_all();
    wake_.wait_for(lock, grace, [this] { return active_.empty(); });
    for (auto& [id, active] : active_) {
      if (active->why.empty()) active->why = "the agent is shutting down";
      active->cancel = true;
    }
    wake_.notify_all();
  }
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
  threads_.clear();
  if (lease_thread_.joinable()) lease_thread_.join();
}

std::shared_ptr<RunWorker::Active> RunWorker::register_run(const store::RunRecord& run) {
  auto active = std::make_shared<Active>();
  active->claim = store::Claim{run.id, options_.owner, run.attempt};
  std::lock_guard lock(mutex_);
  active_[run.id] = active;
  return active;
}

void RunWorker::unregister_run(std::int64_t id) {
  std::lock_guard lock(mutex_);
  active_.erase(id);
  wake_.notify_all();  // drain() waits for this
}

std::string RunWorker::cancel_reason(const Active& active) const {
  std::lock_guard lock(mutex_);
  return active.why.empty() ? "cancelled" : active.why;
}

void RunWorker::work_loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
    }
    auto claimed = store_.claim_next_run(options_.owner, options_.lease.count(), now_());
    if (!claimed) spdlog::error("event=claim_failed error=\"{}\"", claimed.error().message);
    if (!claimed || !*claimed) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.idle_poll, [this] { return stopping_ || woken_; });
      woken_ = false;
      continue;
    }
    const store::RunRecord& run = **claimed;
    if (metrics_) metrics_->queue_wait(static_cast<double>(now_() - run.created_ms) / 1000.0);
    auto active = register_run(run);
    spdlog::info("event=run_started run={} repository={} sha={} ref={} event={} attempt={}", run.id,
                 run.repository, run.sha, run.ref, run.event, run.attempt);
    try {
      process(run, *active);
    } catch (const std::exception& e) {
      // A bug of ours must not take the agent down: the run ends in error, visibly.
      spdlog::error("event=run_internal_error run={} error=\"{}\"", run.id, e.what());
      store_.finish_run(active->claim, store::RunState::error, std::string("internal error: ") + e.what(), now_());
    }
    unregister_run(run.id);
  }
}

// Renews the lease of every run this agent has and notices runs that were
// cancelled through the store (an admin, a newer push seen by another agent).
void RunWorker::lease_loop() {
  const auto period = std::max(options_.lease / 3, std::chrono::milliseconds(100));
  std::unique_lock lock(mutex_);
  while (!stopping_ || !active_.empty()) {
    wake_.wait_for(lock, std::min(period, std::chrono::milliseconds(1000)));
    std::vector<std::shared_ptr<Active>> runs;
    for (auto& [id, active] : active_) runs.push_back(active);
    lock.unlock();
    for (auto& active : runs) {
      auto renewed = store_.renew_lease(active->claim, options_.lease.count(), now_());
      auto cancelled = store_.cancel_requested(active->claim.run_id);
      if (renewed && !*renewed && still_running(active->claim.run_id)) {
        spdlog::warn("event=lease_lost run={}", active->claim.run_id);
        cancel_run(active->claim.run_id, "this agent lost its claim on the run");
      } else if (cancelled && *cancelled) {
        cancel_run(active->claim.run_id, "cancelled");
      }
    }
    lock.lock();
  }
}

// A renewal also fails for a run that has just finished and is not unregistered
// yet: only a run the store still has running under another claim is lost.
bool RunWorker::still_running(std::int64_t id) {
  auto run = store_.get_run(id);
  return run && *run && (*run)->state == store::RunState::running;
}

// The run's commit, checked out into <run_dir>/workspace through the mirror
// cache. A run queued by hand for a ref takes the ref's commit now.
std::expected<RunSource, std::string> RunWorker::check_out(const store::RunRecord& run,
                                                           const config::RepositoryConfig& repo,
                                                           const fs::path& run_dir) {
  // A fork's pull request is cloned from the fork, with no credentials of ours.
  const std::string url = !run.from_fork && !repo.clone_url.empty() ? repo.clone_url : run.clone_url;
  git::CheckoutOptions checkout;
  checkout.fetch.pull_requests = run.event == "pull_request";
  if (!run.from_fork) checkout.fetch.credentials = repo.clone;
  std::string sha = run.sha;
  if (sha.empty()) {
    auto fetched = mirrors_.fetch(url, checkout.fetch);
    if (!fetched) return std::unexpected("cannot fetch " + run.ref + ": " + fetched.error().to_string());
    auto resolved = git::resolve_commit(fetched->mirror, run.ref);
    if (!resolved) return std::unexpected("cannot resolve " + run.ref + ": " + resolved.error().to_string());
    sha = *resolved;
  }
  const auto started = std::chrono::steady_clock::now();
  auto checked_out = mirrors_.checkout(url, sha, run_dir / "workspace", checkout);
  if (metrics_) metrics_->mirror_fetch(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (!checked_out) return std::unexpected("checkout of " + sha.substr(0, 12) + " failed: " + checked_out.error().to_string());
  return RunSource{sha, run.ref, run.repository, run_dir / "workspace", checked_out->object_dirs};
}

// Where actions/checkout fetches `repository`: the run's own as check_out does;
// another only when this agent is configured for it on the same forge, and never
// for a fork's pull request (its workflow must not read what our credentials can).
std::expected<RepositoryRemote, std::string> RunWorker::checkout_remote(const store::RunRecord& run,
                                                                        const config::RepositoryConfig& repo,
                                                                        std::string_view name) const {
  const auto config = config_.get();  // held while `other` is used
  auto same = [](std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y)); });
  };
  if (same(name, run.repository)) {
    RepositoryRemote own;
    own.url = !run.from_fork && !repo.clone_url.empty() ? repo.clone_url : run.clone_url;
    if (!run.from_fork) own.credentials = repo.clone;
    own.pull_requests = run.event == "pull_request";
    return own;
  }
  if (run.from_fork)
    return std::unexpected("a pull request from a fork cannot check out another repository (" + std::string(name) + ")");
  const config::RepositoryConfig* other = find_repository(*config, run.forge, name);
  if (!other || other->clone_url.empty())
    return std::unexpected("repository " + std::string(name) +
                           " is not configured on this agent with a clone_url: it cannot be checked out");
  return RepositoryRemote{other->clone_url, other->clone, false};
}

RunEnvironment RunWorker::environment_for(const store::RunRecord& run, const config::RepositoryConfig& repo,
                                          const fs::path& run_dir, SecretMasker& masker) {
  const auto config = config_.get();  // labels and limits as configured when the run starts
  RunEnvironment env;
  env.backend = &backend_;
  env.images = image_source_for(backend_, images_);
  env.masker = &masker;
  if (!run.from_fork) env.secrets = job_secrets(repo);  // forks get no secrets, as on GitHub
  for (const auto& [name, value] : env.secrets) masker.add(value);
  env.default_image = config->default_image;
  env.labels = with_runner_labels(config->labels, image_present(backend_, images_, sandbox::kRunnerImage),
                                  sandbox::kRunnerImage);
  env.limits = job_limits(*config);
  env.capacity = config->capacity;
  env.warm_sandboxes = config->sandbox.warm;
  env.warm_slots = &slots_;  // a sandbox started ahead holds one of the agent's slots
  env.slots = &slots_;
  env.log_limit_bytes = config->limits.job_log_mib << 20;
  env.run_dir = run_dir;
  env.logs_dir = run_dir / "logs";
  env.workflow_logs_dir = [logs_root = env.logs_dir](const PlannedWorkflow& w) {
    return workflow_logs_dir(logs_root, w);
  };
  env.run_id = std::to_string(run.id);
  env.run_number = std::to_string(run.id);
  env.run_attempt = std::to_string(run.attempt);
  env.server_url = config->public_url;
  env.cache = &cache_;
  // Network only as this agent's config grants it to the repository (issue 14).
  if (repo.egress) env.egress = EgressSettings{*repo.egress, config->egress_hosts_file.string(), config->egress_netns.string()};
  env.checkout = mirror_checkout(mirrors_, [this, run, repo = &repo](std::string_view name) {
    return checkout_remote(run, *repo, name);
  });
  return env;
}

// Enters the workflows' `concurrency:` groups (per repository, in a fixed order
// so that two runs never wait for each other); returns those entered. Stops at the
// first it could not enter: the run was cancelled or replaced while it waited.
std::vector<std::string> RunWorker::enter_groups(const store::RunRecord& run, const PreparedRun& prepared,
                                                 const RunSource& source, const RunTrigger& trigger,
                                                 const RunEnvironment& env, Active& active) {
  std::map<std::string, bool> wanted;  // group -> cancel-in-progress
  for (const auto& w : prepared.workflows) {
    const std::string group = concurrency_group(w, source, trigger, env);
    if (!group.empty()) wanted[run.repository + ": " + group] |= concurrency_cancels(w, source, trigger, env);
  }
  std::vector<std::string> entered;
  for (const auto& [group, cancel_in_progress] : wanted) {
    if (!groups_.enter(group, run.id, cancel_in_progress, active.cancel)) break;
    entered.push_back(group);
  }
  return entered;
}

// The first job's sandbox, started now so that it starts while the checkout is
// fetched and written (issue 12): the spec a job of the default image with no
// action beyond the built-in ones gets (job_sandbox_spec), with the workspace
// folder the checkout goes into and the mirror's objects as its alternates.
// None when warm sandboxes are off, the repository's jobs get network (their
// own namespaces), the mirror does not exist yet, or no slot is free; a wrong
// guess costs a start, and the sandbox is destroyed unused.
std::unique_ptr<PrestartedSandbox> RunWorker::prestart_first_job(const config::AgentConfig& config,
                                                                 const store::RunRecord& run,
                                                                 const config::RepositoryConfig& repo,
                                                                 const fs::path& run_dir,
                                                                 const nlohmann::json& payload) {
  if (config.sandbox.warm == 0 || repo.egress) return nullptr;
  const std::string url = !run.from_fork && !repo.clone_url.empty() ? repo.clone_url : run.clone_url;
  std::error_code ec;
  const fs::path objects = mirrors_.mirror_path(url) / "objects";
  if (!fs::is_directory(objects, ec)) return nullptr;
  auto image = image_source_for(backend_, images_)(config.default_image);
  if (!image) return nullptr;
  const fs::path workspace = run_dir / "workspace";
  fs::create_directories(workspace, ec);  // the checkout writes into it (an empty folder is fine)
  if (ec) return nullptr;
  auto event_file = write_event_file(run_dir / "scratch", payload.dump());
  if (!event_file) return nullptr;
  auto spec = job_sandbox_spec(*image, workspace, {objects}, *event_file, job_limits(config));
  if (!spec) return nullptr;
  spec->name_hint = "first";
  auto first = std::make_unique<PrestartedSandbox>(backend_, &slots_);
  if (!first->start(*spec)) return nullptr;
  return first;
}

// Which commit each remote action ran at: in the agent log and in the store.
void RunWorker::record_action(const store::RunRecord& run, const ActionResolution& resolution) {
  const std::string action = resolution.repository + "@" + resolution.ref;
  if (resolution.from_cache)
    spdlog::warn("event=action_from_cache run={} action={} commit={} url={} reason=\"{}\"", run.id, action,
                 resolution.commit, resolution.url, resolution.problem);
  else
    spdlog::info("event=action_resolved run={} action={} commit={} url={}", run.id, action, resolution.commit,
                 resolution.url);
  auto stored = store_.put_action_ref({run.id, resolution.repository, resolution.ref, resolution.commit,
                                       resolution.url, resolution.from_cache, now_()});
  if (!stored) spdlog::error("event=action_record_failed run={} error=\"{}\"", run.id, stored.error().message);
}

void RunWorker::process(const store::RunRecord& run, Active& active) {
  const auto config = config_.get();  // held for the whole run: a reload never takes a running run's repository away
  const store::Claim& claim = active.claim;
  std::unique_ptr<PrestartedSandbox> first_sandbox;
  auto finish = [&](store::RunState state, const std::string& message) {
    // A finished run holds no sandbox: the unused first one goes before the run
    // is marked over (anyone who sees the run end sees no sandbox of it left).
    first_sandbox.reset();
    store_.finish_run(claim, state, message, now_());
    spdlog::info("event=run_finished run={} state={} message=\"{}\"", run.id, store::to_string(state), message);
  };
  const config::RepositoryConfig* repo = find_repository(*config, run.forge, run.repository);
  if (!repo) return finish(store::RunState::error, "repository " + run.repository + " is no longer configured");

  const fs::path run_dir = config->state_dir / "runs" / std::to_string(run.id);
  std::error_code ec;
  fs::remove_all(run_dir / "workspace", ec);  // a re-queued run starts from a fresh checkout
  fs::create_directories(run_dir, ec);
  RemoveOnExit remove_workspace{run_dir / "workspace"};
  RemoveOnExit remove_scratch{run_dir / "scratch"};
  // Released by finish(), before the folders it mounts are removed.
  first_sandbox = prestart_first_job(*config, run, *repo, run_dir, run_payload(run));

  auto source = check_out(run, *repo, run_dir);
  StatusScope scope{forge_kind(repo->forge), run.repository, status_sha(run, source ? source->sha : run.sha), run.ref,
                    config->public_url + "/runs/" + std::to_string(run.id)};
  RunReporter reporter(store_, claim, scope, now_, statuses_changed_, metrics_);
  if (!source) {
    if (!scope.sha.empty()) reporter.run_level(CommitState::error, source.error());
    return finish(store::RunState::error, source.error());
  }
  RunTrigger trigger;
  trigger.event = run.event;
  trigger.action = run.action;
  trigger.base_ref = run.base_ref;
  trigger.head_ref = run.head_ref;
  trigger.payload = run_payload(run);
  // Remote actions and reusable workflows: one commit per ref for the whole run.
  RunActionSource actions(actions_, action_credentials(*config, *repo, run));
  actions.on_resolved([this, &run](const ActionResolution& r) { record_action(run, r); });
  // A re-run of failed jobs runs those jobs (and what they need) only.
  auto prepared = prepare_selected_run(*source, trigger, run.only_jobs, &actions);
  if (!prepared) {
    std::string all;
    for (const auto& m : prepared.error().messages) all += (all.empty() ? "" : "\n") + m;
    reporter.run_level(CommitState::failure, first_line(all));
    return finish(store::RunState::failure, all);
  }
  if (prepared->workflows.empty()) {
    remove_workspace.path = run_dir;  // nothing ran: no logs to keep
    reporter.settle_run_level(CommitState::success, "No workflow runs for this event");
    return finish(store::RunState::success, "no workflow runs for this event");
  }

  reporter.announce(*prepared, run_dir / "logs");
  SecretMasker masker;
  RunEnvironment env = environment_for(run, *repo, run_dir, masker);
  env.actions = &actions;
  if (first_sandbox) {
    // A sandbox no job can take must not hold memory and a slot for the whole run.
    if (some_job_in(*prepared, env))
      env.backend = first_sandbox.get();
    else
      first_sandbox->discard();
  }
  LeaveGroups leave{groups_, enter_groups(run, *prepared, *source, trigger, env, active), run.id};
  WorkflowHooks hooks;
  hooks.started = [&reporter](const PlannedWorkflow& w) { return reporter.observe(w); };
  hooks.finished = [&reporter](const PlannedWorkflow& w, const scheduler::RunReport& r) {
    reporter.workflow_finished(w, r);
  };
  hooks.job_began = [&reporter](const PlannedWorkflow& w, const std::string& job) { reporter.job_began(w, job); };
  const RunResult result = execute_run(*prepared, *source, trigger, env, active.cancel, hooks);
  if (first_sandbox) spdlog::debug("event=first_sandbox run={} taken={}", run.id, first_sandbox->taken());
  // Every job has ended and closed its log: stored compressed from now on.
  compress_logs_under(run_dir / "logs");
  if (result == RunResult::cancelled) {
    const std::string why = cancel_reason(active);
    reporter.end_unfinished(*prepared, CommitState::cancelled, why);
    reporter.settle_run_level(CommitState::cancelled, "Cancelled: " + why);
    return finish(store::RunState::cancelled, why);
  }
  const bool succeeded = result == RunResult::success;
  reporter.settle_run_level(succeeded ? CommitState::success : CommitState::failure,
                            succeeded ? "Run " + std::to_string(run.id) + " succeeded"
                                      : "Run " + std::to_string(run.id) + " failed");
  finish(succeeded ? store::RunState::success : store::RunState::failure, broken_message(*prepared));
}

}  // namespace sandci::agent::server
