#include "agent/server/webhook_intake.h"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <memory>

#include "agent/forge/codec.h"
#include "agent/forge/webhook.h"
#include "agent/server/repository_glue.h"
#include "agent/server/run_reporter.h"

namespace sandci::agent::server {
namespace {

http::HttpResponse answer(int status, const std::string& text) {
  return http::HttpResponse::text(status, text + "\n");
}

// A delivery without an id (an old GitLab) is told apart by its bytes.
std::string body_digest(const std::string& body) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  return "sha256:" + forge::hex_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

// The event kinds a repository's `events:` names: push (branches), tag, pull_request.
config::RepositoryEvent configured_event(const forge::WebhookEvent& event) {
  if (event.kind == forge::EventKind::pull_request) return config::RepositoryEvent::kPullRequest;
  return event.ref.rfind("refs/tags/", 0) == 0 ? config::RepositoryEvent::kTag : config::RepositoryEvent::kPush;
}

store::NewRun new_run(const forge::WebhookEvent& event, forge::ForgeKind kind, const std::string& delivery_id) {
  store::NewRun run;
  run.repository = event.repository;
  run.forge = std::string(forge::to_string(kind));
  run.event = event.event_name;
  run.action = event.action;
  run.ref = event.ref;
  run.sha = event.sha;
  run.base_ref = event.base_ref;
  run.head_ref = event.head_ref;
  run.from_fork = event.from_fork;
  run.clone_url = event.from_fork && !event.head_clone_url.empty() ? event.head_clone_url : event.clone_url;
  run.payload_json = event.payload.dump();
  run.trigger = "webhook";
  // A newer push to a branch (or to a pull request) supersedes the older run.
  run.concurrency_key = event.repository + " " + event.ref;
  run.delivery_id = delivery_id;
  run.title = event.commit_message.substr(0, event.commit_message.find('\n'));
  return run;
}

// The pull_request_target run of a pull request: the BASE branch's workflows, from the
// base repository (with its secrets, as on GitHub), on the base branch's HEAD when it
// runs (sha left empty: the worker resolves the ref then).
store::NewRun target_run(const store::NewRun& pull_request, const forge::WebhookEvent& event) {
  store::NewRun run = pull_request;
  run.event = "pull_request_target";
  run.ref = "refs/heads/" + event.base_ref;
  run.sha.clear();
  run.from_fork = false;
  run.clone_url = event.clone_url;
  run.concurrency_key = pull_request.concurrency_key + " target";
  return run;
}

}  // namespace

// What decide() found: the answer already (malformed, refused, ping, disk full), or
// the delivery and its runs to commit, with what the answer after the commit needs.
struct WebhookIntake::Decided {
  std::optional<http::HttpResponse> answer;
  std::string forge_name = "unknown", result = "malformed";  // for the metrics
  std::shared_ptr<const config::AgentConfig> config;  // one configuration for the whole delivery
  bool cancel_superseded = false;
  store::DeliveryRecord delivery;
  std::vector<store::NewRun> runs;
  std::optional<std::string> ignored;

  Decided& answered(http::HttpResponse response) {
    answer = std::move(response);
    return *this;
  }
};

WebhookIntake::WebhookIntake(config::ConfigRef config, store::RunStore& store, Now now, Queued queued,
                             Metrics* metrics)
    : config_(config), store_(store), now_(std::move(now)), queued_(std::move(queued)), metrics_(metrics) {}

WebhookIntake::~WebhookIntake() {
  std::unique_lock lock(in_flight_mutex_);
  all_answered_.wait(lock, [this] { return in_flight_ == 0; });
}

http::HttpResponse WebhookIntake::handle(const http::HttpRequest& request, const std::string& forge_in_path) {
  Decided decided = decide(request, forge_in_path);
  if (!decided.answer)
    decided.answer = after_commit(decided, store_.accept_delivery_runs(decided.delivery, decided.runs));
  if (metrics_) metrics_->delivery(decided.forge_name, decided.result);
  return std::move(*decided.answer);
}

void WebhookIntake::handle_async(const http::HttpRequest& request, const std::string& forge_in_path,
                                 std::function<void(http::HttpResponse)> respond) {
  auto decided = std::make_shared<Decided>(decide(request, forge_in_path));
  if (decided->answer || !decided->runs.empty()) {
    if (!decided->answer)
      decided->answer = after_commit(*decided, store_.accept_delivery_runs(decided->delivery, decided->runs));
    if (metrics_) metrics_->delivery(decided->forge_name, decided->result);
    return respond(std::move(*decided->answer));
  }
  // Nothing to start: the answer needs no store write after the commit, so the
  // writer thread gives it and no thread waits for the fsync.
  {
    std::lock_guard lock(in_flight_mutex_);
    ++in_flight_;
  }
  store_.accept_delivery_runs_then(
      decided->delivery, decided->runs,
      [this, decided, respond = std::move(respond)](
          std::expected<store::RunStore::Accepted, store::StoreError> accepted) {
        http::HttpResponse response = after_commit(*decided, accepted);
        if (metrics_) metrics_->delivery(decided->forge_name, decided->result);
        respond(std::move(response));
        // Notified under the lock: the destructor cannot return (and take the
        // condition with it) before this thread has let go of it.
        std::lock_guard lock(in_flight_mutex_);
        --in_flight_;
        all_answered_.notify_all();
      });
}

// Everything before the commit: which forge, the repository, the signature, the
// event; says which forge it came from and the answer's kind, for the metrics.
WebhookIntake::Decided WebhookIntake::decide(const http::HttpRequest& request, const std::string& forge_in_path) {
  Decided decided;
  if (request.method != "POST") return decided.answered(answer(405, "webhooks are POSTed"));
  auto headers = [&request](std::string_view name) { return request.headers.get(name); };
  std::optional<forge::ForgeKind> kind =
      forge_in_path.empty() ? forge::detect_forge(headers) : forge::parse_forge_kind(forge_in_path);
  if (!kind) {
    if (!forge_in_path.empty()) return decided.answered(answer(404, "no such forge: " + forge_in_path));
    return decided.answered(answer(400, "not a webhook from GitHub, Gitea, Forgejo or GitLab (no event header)"));
  }
  decided.forge_name = std::string(forge::to_string(*kind));
  const std::string content_type = request.headers.get("Content-Type").value_or("");
  auto envelope = forge::read_envelope(*kind, headers, request.body, content_type);
  if (!envelope) return decided.answered(answer(400, envelope.error().reason));
  // An organisation's hook pings without naming a repository: nothing to verify
  // it against, and nothing starts.
  if (envelope->repository.empty() && envelope->event == "ping") {
    decided.result = "ping";
    return decided.answered(answer(200, "pong"));
  }

  decided.config = config_.get();  // one configuration for the whole delivery, even across a reload
  const config::AgentConfig& config = *decided.config;
  const config::RepositoryConfig* repo = find_repository(config, forge::to_string(*kind), envelope->repository);
  if (!repo) {
    spdlog::warn("event=webhook_refused forge={} repository=\"{}\" delivery={} reason=not_configured",
                 forge::to_string(*kind), envelope->repository, envelope->delivery_id);
    decided.result = "unknown_repository";
    return decided.answered(answer(401, "unknown repository or bad signature"));
  }
  const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(now_()));
  auto verified = forge::verify_signature(*kind, headers, request.body, repo->webhook_secret.reveal(), now);
  if (!verified.ok()) {
    spdlog::warn("event=webhook_refused forge={} repository={} delivery={} reason=\"{}\"", forge::to_string(*kind),
                 envelope->repository, envelope->delivery_id, verified.reason);
    decided.result = "bad_signature";
    return decided.answered(answer(401, verified.reason));
  }
  auto event = forge::parse_event(*envelope);
  if (!event) return decided.answered(answer(400, event.error().reason));
  if (event->kind == forge::EventKind::ping) {
    decided.result = "ping";
    return decided.answered(answer(200, "pong"));
  }

  const std::string delivery_id = envelope->delivery_id.empty() ? body_digest(request.body) : envelope->delivery_id;
  decided.delivery = store::DeliveryRecord{std::string(forge::to_string(*kind)), delivery_id, event->repository,
                                           envelope->event, now_(), ""};
  decided.cancel_superseded = repo->cancel_superseded;
  std::optional<std::string>& ignored = decided.ignored;
  ignored = event->ignored;
  if (!ignored && event->kind == forge::EventKind::other) ignored = "event '" + envelope->event + "' is not built";
  const config::RepositoryEvent wanted = configured_event(*event);
  if (!ignored && !repo->handles(wanted))
    ignored = std::string(config::to_string(wanted)) + " events are not configured for " + repo->name;
  if (ignored) {
    decided.delivery.outcome = "ignored: " + *ignored;
  } else {
    store::NewRun run = new_run(*event, *kind, delivery_id);
    decided.runs.push_back(run);
    // A pull request runs its pull_request workflows (head) and pull_request_target ones (base).
    if (event->kind == forge::EventKind::pull_request) decided.runs.push_back(target_run(run, *event));
    decided.delivery.outcome = "queued";
  }

  if (auto full = state_disk_full(config)) {
    spdlog::warn("event=delivery_refused reason=state_disk_full forge={} repository={} delivery={} detail=\"{}\"",
                 forge::to_string(*kind), event->repository, delivery_id, *full);
    decided.result = "disk_full";
    http::HttpResponse refused = answer(503, "the agent's disk is full (" + *full + "); redeliver it later");
    refused.headers.set("Retry-After", "60");
    return decided.answered(std::move(refused));
  }
  return decided;
}

http::HttpResponse WebhookIntake::after_commit(
    Decided& decided, const std::expected<store::RunStore::Accepted, store::StoreError>& accepted) {
  const std::string& delivery_id = decided.delivery.delivery_id;
  if (!accepted) {
    spdlog::error("event=delivery_not_recorded delivery={} error=\"{}\"", delivery_id, accepted.error().message);
    decided.result = "store_error";
    return answer(503, "cannot record the delivery now; redeliver it later");
  }
  decided.result = accepted->duplicate ? "duplicate" : decided.ignored ? "ignored" : "queued";
  if (accepted->duplicate) return answer(200, "duplicate delivery " + delivery_id + ": nothing started");
  if (decided.ignored) {
    spdlog::info("event=webhook_ignored repository={} delivery={} why=\"{}\"", decided.delivery.repository,
                 delivery_id, *decided.ignored);
    return answer(200, "ignored: " + *decided.ignored);
  }
  const std::vector<store::NewRun>& runs = decided.runs;
  const std::int64_t run_id = *accepted->run_id;
  for (std::size_t i = 0; i < runs.size() && i < accepted->run_ids.size(); ++i) {
    const std::int64_t id = accepted->run_ids[i];
    std::vector<std::int64_t> superseded;
    if (decided.cancel_superseded) {
      std::vector<std::int64_t> cancelled_queued;
      auto older = store_.supersede(runs[i].concurrency_key, id, now_(), &cancelled_queued);
      if (older) superseded = *older;
      for (auto queued : cancelled_queued) end_superseded_statuses(*decided.config, queued, runs[i].sha);
    }
    spdlog::info("event=run_queued run={} repository={} sha={} ref={} event={} delivery={}", id, runs[i].repository,
                 runs[i].sha, runs[i].ref, runs[i].event, delivery_id);
    if (queued_) queued_(id, superseded);
  }
  return http::HttpResponse::json(
      202, nlohmann::json{{"run", run_id},
                          {"runs", accepted->run_ids},
                          {"url", decided.config->public_url + "/runs/" + std::to_string(run_id)}}
               .dump());
}

// A run cancelled while queued never runs, so nothing else would end what an
// earlier attempt of it (interrupted, then queued again) left pending.
void WebhookIntake::end_superseded_statuses(const config::AgentConfig& config, std::int64_t run_id,
                                            const std::string& newer_sha) {
  auto run = store_.get_run(run_id);
  if (!run || !*run) return;
  const store::RunRecord& old = **run;
  const auto kind = forge::parse_forge_kind(old.forge);
  // The same commit pushed again: the newer run posts its own states on these contexts.
  if (!kind || old.sha.empty() || old.sha == newer_sha) return;
  const StatusScope scope{*kind, old.repository, old.sha, old.ref, config.public_url + "/runs/" + std::to_string(run_id)};
  const int ended = end_open_statuses(store_, scope, forge::CommitState::cancelled,
                                      "superseded by " + newer_sha.substr(0, 12), now_());
  if (ended > 0) {
    spdlog::info("event=superseded_statuses_ended run={} repository={} sha={} contexts={}", run_id, old.repository,
                 old.sha, ended);
  }
}

// Checked before every delivery is written: a statvfs is cheap beside the commit,
// and a store that fills its disk mid-write is what this keeps from happening.
std::optional<std::string> WebhookIntake::state_disk_full(const config::AgentConfig& config) {
  struct statvfs st {};
  // Without a readable file system the store's own commit decides.
  if (config.state_dir.empty() || ::statvfs(config.state_dir.c_str(), &st) != 0) return std::nullopt;
  const std::uint64_t free_mib = (static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize) >> 20;
  const std::uint64_t limit_mib = config.limits.state_min_free_mib;
  const bool full = free_mib < limit_mib;
  if (disk_full_.exchange(full) != full) {
    if (full)
      spdlog::error("event=state_disk_full state_dir={} free_mib={} min_free_mib={} action=refusing_deliveries",
                    config.state_dir.string(), free_mib, limit_mib);
    else
      spdlog::info("event=state_disk_recovered state_dir={} free_mib={} min_free_mib={} action=accepting_deliveries",
                   config.state_dir.string(), free_mib, limit_mib);
  }
  if (!full) return std::nullopt;
  return std::to_string(free_mib) + " MiB free in " + config.state_dir.string() + ", " + std::to_string(limit_mib) +
         " MiB needed";
}

}  // namespace sandci::agent::server
