#pragma once
// The agent's HTTP routes:
//   POST /webhook, /webhook/<forge>        deliveries (WebhookIntake)
//   GET  /healthz                          liveness and queue figures (JSON)
//   GET  /metrics                          Prometheus metrics
//   GET  /, /runs                          recent runs
//   GET  /runs/<id>                        a run: its commit, jobs and states
//   GET  /runs/<id>/jobs/<job>/log         a job's log as a page (?raw=1: plain text,
//                                          ?raw=1&after=N: the lines after line N)
//   GET  /login[?next=], POST /login       the viewer login form; POST (or GET with
//                                          ?token=) sets the session cookie
//   POST /logout                           drops the session cookie
//   POST /runs/<id>/cancel|rerun|rerun-failed  the run page's admin forms (session
//                                          cookie of the admin token and a CSRF token)
//   GET  /static/pages.js, pages.css       the pages' script and style sheet
//   GET  /api/runs/<id>                    a run and its jobs as JSON
//   POST /api/enqueue                      queue a run by hand (admin token)
//   GET  /api/runs?repository=&ref=&state=&limit=&before=   runs as JSON, newest first
//   POST /api/runs/<id>/cancel             cancel a queued or running run (admin token)
//   POST /api/runs/<id>/rerun[?failed_only=1]  queue it again, maybe only the jobs that
//                                          did not succeed (admin token)
//   GET  /api/runs/<id>/actions            what admins did to a run (JSON)
// Every route that shows a run (pages, logs, JSON) answers only what the request's
// viewer may see (agent/server/pages_access.h): a private run is "404 no such run"
// without its token, exactly as a run that does not exist.
// Pages are HTML (agent/server/pages.h), every byte that came from a repository, a
// forge or a job escaped, under a CSP that allows only the agent's own script and style.
#include <cstdint>
#include <expected>
#include <utility>
#include <vector>
#include <functional>
#include <string>

#include "agent/config/agent_config.h"
#include "agent/config/live_config.h"
#include "agent/http/http_types.h"
#include "agent/runner/job_slots.h"
#include "agent/server/metrics.h"
#include "agent/server/pages_access.h"
#include "agent/server/readiness.h"
#include "agent/server/webhook_intake.h"
#include "agent/store/run_store.h"

namespace sandci::agent::server {

class Routes {
 public:
  using Now = std::function<std::int64_t()>;
  // `session_key`: the key of the login cookies (agent/server/session_key.h); empty,
  // a random one that lasts as long as these routes.
  Routes(config::ConfigRef config, store::RunStore& store, WebhookIntake& intake, Now now,
         std::function<void(std::int64_t)> queued, Metrics* metrics = nullptr, const JobSlots* slots = nullptr,
         Readiness* readiness = nullptr, std::string session_key = {});

  http::HttpResponse handle(const http::HttpRequest& request);
  // handle(), answering through `respond` (exactly once): a webhook that starts no run
  // is answered from the store's writer thread once committed
  // (WebhookIntake::handle_async), so no handler thread waits for its fsync; every
  // other request before this returns.
  void handle_async(const http::HttpRequest& request, std::function<void(http::HttpResponse)> respond);

  // How many sandboxes exist now, for GET /metrics (unset: reported as 0).
  void count_sandboxes_with(std::function<std::int64_t()> counter) { count_sandboxes_ = std::move(counter); }

 private:
  http::HttpResponse health();
  http::HttpResponse ready();
  http::HttpResponse metrics();
  http::HttpResponse run_list(const Viewer& viewer, std::string_view target);
  http::HttpResponse run_page(const Viewer& viewer, std::int64_t id);
  http::HttpResponse run_json(const Viewer& viewer, std::int64_t id);
  // The run and its jobs when `viewer` may see them; else the 404 of a missing run.
  std::expected<std::pair<store::RunRecord, std::vector<store::JobRecord>>, http::HttpResponse> load_run(
      const Viewer& viewer, std::int64_t id);
  // Up to filter.limit runs `viewer` may see, newest first, from filter.before_id on;
  // `more` says whether older visible runs may follow.
  std::expected<std::vector<store::RunRecord>, http::HttpResponse> visible_runs(const Viewer& viewer,
                                                                                store::RunFilter filter, bool& more);
  http::HttpResponse job_log(const Viewer& viewer, std::int64_t id, const std::string& job, std::string_view target);
  http::HttpResponse login(const http::HttpRequest& request);
  http::HttpResponse logout();
  http::HttpResponse run_form(const http::HttpRequest& request, std::int64_t id, std::string_view action);
  http::HttpResponse enqueue(const http::HttpRequest& request);
  http::HttpResponse cancel_run(const http::HttpRequest& request, std::int64_t id);
  http::HttpResponse rerun_run(const http::HttpRequest& request, std::int64_t id);
  http::HttpResponse cancel_as(std::int64_t id, const std::string& actor);
  http::HttpResponse rerun_as(std::int64_t id, bool failed_only, const std::string& actor);
  http::HttpResponse run_actions(const Viewer& viewer, std::int64_t id);
  http::HttpResponse runs_json(const Viewer& viewer, const http::HttpRequest& request);

  config::ConfigRef config_;  // a snapshot per piece of work: the agent reloads it on SIGHUP
  store::RunStore& store_;
  WebhookIntake& intake_;
  Now now_;
  std::function<void(std::int64_t)> queued_;
  Metrics* metrics_;
  const JobSlots* slots_;
  std::function<std::int64_t()> count_sandboxes_;
  Readiness* readiness_;
  PageAccess access_;
};

// "&<>\"'" as entities: text from outside is shown, never interpreted.
std::string html_escape(std::string_view text);
// %XX decoding of one path segment; nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view text);
std::string percent_encode(std::string_view text);
// A run id or a count in a path or query: digits only, above zero.
std::optional<std::int64_t> positive_id(std::string_view text);
// The query string's name=value pairs, percent-decoded ('+' is a space), in order;
// an error when any of them is malformed.
std::expected<std::vector<std::pair<std::string, std::string>>, std::string> query_params(std::string_view target);

}  // namespace sandci::agent::server
