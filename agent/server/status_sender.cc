#include "agent/server/status_sender.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "agent/forge/status.h"
#include "agent/server/repository_glue.h"

namespace sandci::agent::server {
namespace {

// The outbox keeps the state as the forge names it (what "never the same state
// twice" is judged on); any state that maps to it builds the same request.
forge::CommitState state_for_wire(forge::ForgeKind kind, std::string_view wire) {
  using forge::CommitState;
  for (CommitState state : {CommitState::pending, CommitState::running, CommitState::success, CommitState::failure,
                            CommitState::error, CommitState::cancelled})
    if (forge::forge_state(kind, state) == wire) return state;
  return CommitState::error;
}

}  // namespace

std::chrono::milliseconds retry_delay(const SenderOptions& options, int attempt, double jitter,
                                      std::chrono::milliseconds retry_after) {
  const double doubled = static_cast<double>(options.first_retry.count()) * std::pow(2.0, std::max(0, attempt - 1));
  const double capped = std::min(doubled, static_cast<double>(options.longest_retry.count()));
  const auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(capped * jitter));
  return std::max(delay, retry_after);
}

StatusSender::StatusSender(config::ConfigRef config, store::RunStore& store, http::HttpClient& client,
                           SenderOptions options, Now now, Metrics* metrics)
    : config_(config), store_(store), client_(client), options_(options), now_(std::move(now)), metrics_(metrics) {}

StatusSender::~StatusSender() { stop(); }

void StatusSender::start() { thread_ = std::thread([this] { loop(); }); }

void StatusSender::wake() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  wake_.notify_all();
}

void StatusSender::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void StatusSender::loop() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    const std::size_t tried = send_due();
    std::unique_lock lock(mutex_);
    if (tried == 0) wake_.wait_for(lock, options_.idle_poll, [this] { return stopping_ || woken_; });
    woken_ = false;
  }
}

std::size_t StatusSender::send_due() {
  auto due = store_.due_statuses(now_(), 50);
  if (!due) {
    spdlog::error("event=outbox_read_failed error=\"{}\"", due.error().message);
    return 0;
  }
  for (const auto& status : *due) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    send_one(status);
  }
  return due->size();
}

void StatusSender::send_one(const store::StatusRecord& status) {
  const auto config = config_.get();  // the token of now: a reload may have replaced it
  const config::RepositoryConfig* repo = find_repository(*config, status.forge, status.repository);
  if (!repo) {
    store_.mark_status_refused(status.id, "repository " + status.repository + " is no longer configured");
    return;
  }
  forge::CommitStatus wanted;
  wanted.sha = status.sha;
  wanted.context = status.context;
  wanted.description = status.description;
  wanted.target_url = status.target_url;
  wanted.ref = status.ref;
  wanted.state = state_for_wire(forge_kind(repo->forge), status.state);
  const auto call = forge::build_status_request(status_target(*repo), wanted, repo->api_token.reveal());

  http::ClientRequest request;
  request.method = call.method;
  request.url = call.url;
  for (const auto& [name, value] : call.headers) request.headers.add(name, value);
  request.body = call.body;
  request.timeout = options_.request_timeout;
  auto answer = client_.send(request);

  const auto now = std::chrono::system_clock::time_point(std::chrono::milliseconds(now_()));
  forge::StatusAnswer verdict;
  if (!answer) {
    verdict.outcome = forge::StatusAnswer::Outcome::retry;
    verdict.reason = answer.error();
  } else {
    auto headers = [&](std::string_view name) { return answer->headers.get(name); };
    verdict = forge::classify_status_answer(forge_kind(repo->forge), answer->status, headers, answer->body, now);
  }
  if (metrics_) {
    const char* result = verdict.outcome == forge::StatusAnswer::Outcome::delivered ? "delivered"
                         : verdict.outcome == forge::StatusAnswer::Outcome::refused ? "refused"
                                                                                    : "retry";
    metrics_->status_post(config::to_string(repo->forge), result);
  }
  switch (verdict.outcome) {
    case forge::StatusAnswer::Outcome::delivered:
      store_.mark_status_delivered(status.id, status.state);
      spdlog::info("event=status_delivered repository={} sha={} context=\"{}\" state={}", status.repository,
                   status.sha, status.context, status.state);
      return;
    case forge::StatusAnswer::Outcome::refused:
      store_.mark_status_refused(status.id, verdict.reason);
      spdlog::warn("event=status_refused repository={} sha={} context=\"{}\" reason=\"{}\"", status.repository,
                   status.sha, status.context, verdict.reason);
      return;
    case forge::StatusAnswer::Outcome::retry: {
      std::uniform_real_distribution<double> jitter(0.5, 1.5);
      const auto after = verdict.retry_after ? std::chrono::duration_cast<std::chrono::milliseconds>(*verdict.retry_after)
                                             : std::chrono::milliseconds(0);
      const auto delay = retry_delay(options_, status.attempts + 1, jitter(random_), after);
      store_.mark_status_retry(status.id, now_() + delay.count(), verdict.reason);
      spdlog::warn("event=status_retry repository={} context=\"{}\" attempt={} in_ms={} reason=\"{}\"",
                   status.repository, status.context, status.attempts + 1, delay.count(), verdict.reason);
      return;
    }
  }
}

}  // namespace sandci::agent::server
