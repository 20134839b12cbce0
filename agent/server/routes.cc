#include "agent/server/routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/server/admin_auth.h"
#include "agent/server/log_files.h"
#include "agent/server/pages.h"
#include "agent/server/repository_glue.h"
#include "agent/server/run_reporter.h"

namespace sandci::agent::server {
namespace {

using nlohmann::json;

// A log is answered whole (no streaming yet), so its size bounds the memory one
// request takes: the tail of a longer log is what people need.
constexpr std::size_t kLogPageLimit = 8u << 20;
// The log page's HTML is several times its text (a line's anchor and spans), so the
// page shows a shorter tail: at most this many bytes and lines.
constexpr std::size_t kLogHtmlBytes = 2u << 20;
constexpr std::size_t kLogHtmlLines = 20'000;
// The run list reads the store in batches and keeps the runs the viewer may see; at
// most this many batches per page, so a viewer of one quiet repository among busy
// ones gets a short page with an "older runs" link rather than a slow one.
constexpr std::size_t kListBatch = 200;
constexpr int kListBatches = 50;

std::vector<std::string_view> split_path(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::vector<std::string_view> parts;
  while (!target.empty()) {
    if (target.front() == '/') {
      target.remove_prefix(1);
      continue;
    }
    const auto slash = target.find('/');
    parts.push_back(target.substr(0, slash));
    target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
  }
  return parts;
}

http::HttpResponse text(int status, const std::string& body) { return http::HttpResponse::text(status, body + "\n"); }

// The pages' only script and style are the agent's own files (/static/...): no
// inline code, nothing from elsewhere.
constexpr const char* kPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

http::HttpResponse html(const std::string& title, const std::string& body) {
  http::HttpResponse response;
  response.status = 200;
  response.headers.set("Content-Type", "text/html; charset=utf-8");
  response.headers.set("Content-Security-Policy", kPageCsp);
  response.headers.set("X-Content-Type-Options", "nosniff");
  response.headers.set("Referrer-Policy", "same-origin");
  response.body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                  "content=\"width=device-width, initial-scale=1\"><title>" +
                  html_escape(title) +
                  "</title><link rel=\"stylesheet\" href=\"/static/pages.css\">"
                  "<script src=\"/static/pages.js\" defer></script></head><body>" +
                  body + "</body></html>\n";
  return response;
}

http::HttpResponse see_other(const std::string& location) {
  http::HttpResponse response = http::HttpResponse::empty(303);
  response.headers.set("Location", location);
  response.headers.set("Cache-Control", "no-store");
  return response;
}

// A path on this agent to return to after logging in: "/..." but not "//host" (another
// site) and nothing a browser would read as another scheme or host.
bool local_path(std::string_view next) {
  if (next.empty() || next.front() != '/' || next.rfind("//", 0) == 0) return false;
  for (unsigned char c : next)
    if (c < 0x21 || c == 0x7f || c == '\\') return false;
  return true;
}

// The name=value pairs of a form's urlencoded body.
std::vector<std::pair<std::string, std::string>> form_fields(const std::string& body) {
  return query_params("?" + body).value_or(std::vector<std::pair<std::string, std::string>>{});
}

http::HttpResponse asset(std::string_view content, const char* type) {
  http::HttpResponse response;
  response.headers.set("Content-Type", type);
  response.headers.set("X-Content-Type-Options", "nosniff");
  response.headers.set("Cache-Control", "max-age=300");
  response.body = std::string(content);
  return response;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int value = 0;
    auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<std::int64_t> positive_id(std::string_view text) {
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

std::expected<std::vector<std::pair<std::string, std::string>>, std::string> query_params(std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto mark = target.find('?');
  if (mark == std::string_view::npos) return out;
  std::string_view query = target.substr(mark + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string pair(query.substr(0, amp));
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::replace(pair.begin(), pair.end(), '+', ' ');
    const auto eq = pair.find('=');
    auto name = percent_decode(std::string_view(pair).substr(0, eq));
    auto value = percent_decode(eq == std::string::npos ? std::string_view() : std::string_view(pair).substr(eq + 1));
    if (!name || !value) return std::unexpected("malformed query string");
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

Routes::Routes(config::ConfigRef config, store::RunStore& store, WebhookIntake& intake, Now now,
               std::function<void(std::int64_t)> queued, Metrics* metrics, const JobSlots* slots,
               Readiness* readiness, std::string session_key)
    : config_(config), store_(store), intake_(intake), now_(std::move(now)), queued_(std::move(queued)),
      metrics_(metrics), slots_(slots), readiness_(readiness),
      access_(session_key.empty() ? PageAccess(config) : PageAccess(config, std::move(session_key))) {}

void Routes::handle_async(const http::HttpRequest& request, std::function<void(http::HttpResponse)> respond) {
  const auto parts = split_path(request.target);
  if (!parts.empty() && parts[0] == "webhook" && parts.size() <= 2)
    return intake_.handle_async(request, parts.size() == 2 ? std::string(parts[1]) : "", std::move(respond));
  respond(handle(request));
}

http::HttpResponse Routes::handle(const http::HttpRequest& request) {
  const auto parts = split_path(request.target);
  if (!parts.empty() && parts[0] == "webhook" && parts.size() <= 2)
    return intake_.handle(request, parts.size() == 2 ? std::string(parts[1]) : "");
  if (parts.size() == 2 && parts[0] == "api" && parts[1] == "enqueue") {
    if (request.method != "POST") return text(405, "POST a JSON body");
    return enqueue(request);
  }
  if (parts.size() == 4 && parts[0] == "api" && parts[1] == "runs" && (parts[3] == "cancel" || parts[3] == "rerun")) {
    if (request.method != "POST") return text(405, "POST to " + std::string(parts[3]) + " a run");
    auto id = positive_id(parts[2]);
    if (!id) return text(404, "no such run");
    return parts[3] == "cancel" ? cancel_run(request, *id) : rerun_run(request, *id);
  }
  if (parts.size() == 1 && parts[0] == "login") return login(request);
  if (parts.size() == 1 && parts[0] == "logout")
    return request.method == "POST" ? logout() : text(405, "POST to log out");
  if (parts.size() == 3 && parts[0] == "runs" &&
      (parts[2] == "cancel" || parts[2] == "rerun" || parts[2] == "rerun-failed")) {
    if (request.method != "POST") return text(405, "POST the run page's form");
    auto id = positive_id(parts[1]);
    if (!id) return text(404, "no such run");
    return run_form(request, *id, parts[2]);
  }
  if (request.method != "GET" && request.method != "HEAD") return text(405, "method not allowed");
  const Viewer viewer = access_.viewer_of(request);
  if (parts.size() == 2 && parts[0] == "api" && parts[1] == "runs") return runs_json(viewer, request);
  if (parts.size() == 4 && parts[0] == "api" && parts[1] == "runs" && parts[3] == "actions") {
    auto id = positive_id(parts[2]);
    return id ? run_actions(viewer, *id) : text(404, "no such run");
  }
  if (parts.size() == 3 && parts[0] == "api" && parts[1] == "runs") {
    auto id = positive_id(parts[2]);
    return id ? run_json(viewer, *id) : text(404, "no such run");
  }
  if (parts.size() == 1 && parts[0] == "healthz") return health();
  if (parts.size() == 1 && parts[0] == "readyz" && readiness_) return ready();
  if (parts.size() == 1 && parts[0] == "metrics" && metrics_) return metrics();
  if (parts.size() == 2 && parts[0] == "static" && parts[1] == "pages.js")
    return asset(pages_script(), "text/javascript; charset=utf-8");
  if (parts.size() == 2 && parts[0] == "static" && parts[1] == "pages.css")
    return asset(pages_style(), "text/css; charset=utf-8");
  if (parts.empty() || (parts.size() == 1 && parts[0] == "runs")) return run_list(viewer, request.target);
  if (parts.size() >= 2 && parts[0] == "runs") {
    auto id = positive_id(parts[1]);
    if (!id) return text(404, "no such run");
    if (parts.size() == 2) return run_page(viewer, *id);
    if (parts.size() == 5 && parts[2] == "jobs" && parts[4] == "log") {
      auto job = percent_decode(parts[3]);
      if (!job) return text(400, "malformed job name");
      return job_log(viewer, *id, *job, request.target);
    }
  }
  return text(404, "not found");
}

http::HttpResponse Routes::health() {
  auto queued = store_.count_runs(store::RunState::queued);
  auto running = store_.count_runs(store::RunState::running);
  auto outbox = store_.pending_status_count();
  if (!queued || !running || !outbox) return text(503, "the run store does not answer");
  return http::HttpResponse::json(
      200, json{{"status", "ok"}, {"queued", *queued}, {"running", *running}, {"statuses_pending", *outbox}}.dump());
}

// 200 when every check passes, else 503; the body lists them all either way.
http::HttpResponse Routes::ready() {
  json checks = json::array();
  bool ready = true;
  for (const auto& c : readiness_->check()) {
    ready = ready && c.ok;
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  }
  return http::HttpResponse::json(ready ? 200 : 503, json{{"ready", ready}, {"checks", checks}}.dump());
}

http::HttpResponse Routes::metrics() {
  MetricGauges gauges;
  for (auto state : {store::RunState::queued, store::RunState::running, store::RunState::success,
                     store::RunState::failure, store::RunState::error, store::RunState::cancelled}) {
    auto count = store_.count_runs(state);
    if (!count) return text(503, "the run store does not answer");
    gauges.runs_by_state[std::string(store::to_string(state))] = *count;
  }
  auto outbox = store_.pending_status_count();
  if (!outbox) return text(503, "the run store does not answer");
  gauges.outbox_depth = *outbox;
  auto oldest = store_.oldest_due_status_ms();
  if (!oldest) return text(503, "the run store does not answer");
  if (*oldest) gauges.outbox_oldest_age_seconds = std::max<double>(0, (now_() - **oldest) / 1000.0);
  if (count_sandboxes_) gauges.sandboxes_alive = count_sandboxes_();
  if (slots_) {
    gauges.jobs_running = static_cast<std::int64_t>(slots_->in_use());
    gauges.jobs_waiting = static_cast<std::int64_t>(slots_->waiting());
    gauges.capacity = static_cast<std::int64_t>(slots_->capacity());
  }
  http::HttpResponse response;
  response.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  response.body = metrics_->render(gauges);
  return response;
}

std::expected<std::vector<store::RunRecord>, http::HttpResponse> Routes::visible_runs(const Viewer& viewer,
                                                                                      store::RunFilter filter,
                                                                                      bool& more) {
  const std::size_t want = filter.limit;
  std::vector<store::RunRecord> out;
  more = false;
  filter.limit = std::max(want + 1, kListBatch);
  for (int batch = 0; batch < kListBatches; ++batch) {
    auto runs = store_.list_runs(filter);
    if (!runs) return std::unexpected(text(503, "the run store does not answer"));
    for (auto& run : *runs) {
      if (!access_.may_view(viewer, run.forge, run.repository)) continue;
      if (out.size() == want) {
        more = true;
        return out;
      }
      out.push_back(std::move(run));
    }
    if (runs->size() < filter.limit) return out;
    filter.before_id = runs->back().id;
  }
  more = !out.empty();
  return out;
}

http::HttpResponse Routes::run_list(const Viewer& viewer, std::string_view target) {
  auto filter = run_filter_from_query(target);
  if (!filter) return text(400, filter.error());
  bool more = false;
  auto runs = visible_runs(viewer, *filter, more);
  if (!runs) return runs.error();
  return html("sandci runs", viewer_nav(!viewer.session.empty(), viewer.admin, std::string(target)) +
                                 run_list_body(*runs, *filter, more));
}

// A run and its jobs from the store, or the answer that says why not. A run the
// viewer may not see is answered as one that does not exist.
std::expected<std::pair<store::RunRecord, std::vector<store::JobRecord>>, http::HttpResponse> Routes::load_run(
    const Viewer& viewer, std::int64_t id) {
  auto run = store_.get_run(id);
  if (!run) return std::unexpected(text(503, "the run store does not answer"));
  if (!*run || !access_.may_view(viewer, (*run)->forge, (*run)->repository))
    return std::unexpected(text(404, "no such run"));
  auto jobs = store_.jobs_of(id);
  if (!jobs) return std::unexpected(text(503, "the run store does not answer"));
  return std::make_pair(std::move(**run), std::move(*jobs));
}

http::HttpResponse Routes::run_page(const Viewer& viewer, std::int64_t id) {
  auto loaded = load_run(viewer, id);
  if (!loaded) return loaded.error();
  const auto& [run, jobs] = *loaded;
  RunPageExtras extras;
  // Without them the page still shows the run: the actions list is a detail.
  extras.action_refs = store_.action_refs_of(id).value_or(std::vector<store::ActionRefRecord>{});
  if (viewer.admin) extras.csrf = access_.csrf_token(viewer);
  return html("sandci run #" + std::to_string(id) + (run.title.empty() ? "" : ": " + run.title),
              viewer_nav(!viewer.session.empty(), viewer.admin, "/runs/" + std::to_string(id)) +
                  run_page_body(run, jobs, extras));
}

http::HttpResponse Routes::run_json(const Viewer& viewer, std::int64_t id) {
  auto loaded = load_run(viewer, id);
  if (!loaded) return loaded.error();
  const auto& [r, jobs] = *loaded;
  json out = {{"id", r.id},           {"repository", r.repository}, {"forge", r.forge},
              {"event", r.event},     {"ref", r.ref},               {"sha", r.sha},
              {"state", store::to_string(r.state)}, {"message", r.message}, {"attempt", r.attempt},
              {"created_ms", r.created_ms}, {"started_ms", r.started_ms}, {"finished_ms", r.finished_ms},
              {"expired_ms", r.expired_ms}, {"jobs", json::array()}};
  for (const auto& job : jobs)
    out["jobs"].push_back({{"key", job.key}, {"workflow", job.workflow}, {"name", job.name},
                           {"state", store::to_string(job.state)}, {"started_ms", job.started_ms},
                           {"finished_ms", job.finished_ms}, {"message", job.message}});
  return http::HttpResponse::json(200, out.dump());
}

namespace {

// At most kLogPageLimit bytes of `file`: the whole of it, or its tail after a note
// saying how much was left out. With `after`, the lines after line `after` (lines
// counted from the start of the file), so a page can fetch only what is new.
std::optional<std::string> read_log(const std::string& file, std::optional<std::size_t> after) {
  auto opened = open_job_log(file);  // plain while the run goes on, compressed after
  if (!opened) return std::nullopt;
  std::istream& in = *opened;
  if (after) {
    std::string line;
    for (std::size_t i = 0; i < *after && std::getline(in, line); ++i) {
    }
    if (!in) return std::string();
  }
  const auto start = in.tellg();
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(0, end - start));
  const std::size_t skipped = size > kLogPageLimit ? size - kLogPageLimit : 0;
  in.seekg(start + static_cast<std::streamoff>(skipped));
  std::string content(size - skipped, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<std::size_t>(in.gcount()));
  if (after) {
    // A poll takes only whole lines; a partly written last line comes next time.
    const auto last = content.rfind('\n');
    content.resize(last == std::string::npos ? 0 : last + 1);
  } else if (skipped > 0) {
    content = "[the first " + std::to_string(skipped) + " bytes of this log are left out]\n" + content;
  }
  return content;
}

// The page's part of a log: all of it, or (over kLogHtmlBytes or kLogHtmlLines) its
// tail from the first whole line, numbered as in the file so links and polls stay
// right.
std::optional<LogSlice> read_log_slice(const std::string& file) {
  auto opened = open_job_log(file);
  if (!opened) return std::nullopt;
  std::istream& in = *opened;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(0, in.tellg()));
  in.seekg(0);
  LogSlice slice;
  slice.skipped_bytes = size > kLogHtmlBytes ? size - kLogHtmlBytes : 0;
  std::string chunk(1u << 20, '\0');
  bool at_line_start = true;
  for (std::size_t left = slice.skipped_bytes; left > 0 && in;) {
    in.read(chunk.data(), static_cast<std::streamsize>(std::min(left, chunk.size())));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    slice.first_line += static_cast<std::size_t>(std::count(chunk.begin(), chunk.begin() + got, '\n'));
    at_line_start = chunk[got - 1] == '\n';
    left -= got;
  }
  slice.content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!at_line_start) {
    // The cut fell inside a line: that line is left out whole.
    const auto nl = slice.content.find('\n');
    const std::size_t drop = nl == std::string::npos ? slice.content.size() : nl + 1;
    slice.skipped_bytes += drop;
    slice.first_line += nl == std::string::npos ? 0 : 1;
    slice.content.erase(0, drop);
  }
  std::size_t lines = static_cast<std::size_t>(std::count(slice.content.begin(), slice.content.end(), '\n'));
  if (!slice.content.empty() && slice.content.back() != '\n') ++lines;
  std::size_t cut = 0;
  for (; lines > kLogHtmlLines; --lines) {
    cut = slice.content.find('\n', cut) + 1;
    ++slice.first_line;
  }
  slice.skipped_bytes += cut;
  slice.content.erase(0, cut);
  return slice;
}

}  // namespace

http::HttpResponse Routes::job_log(const Viewer& viewer, std::int64_t id, const std::string& key,
                                   std::string_view target) {
  auto loaded = load_run(viewer, id);
  if (!loaded) return loaded.error();
  const auto& [run, jobs] = *loaded;
  for (const auto& job : jobs) {
    if (job.key != key) continue;
    const bool raw = query_param(target, "raw").value_or("") == "1";
    std::optional<std::size_t> after;
    if (auto given = query_param(target, "after")) {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(given->data(), given->data() + given->size(), n);
      if (ec != std::errc() || end != given->data() + given->size()) return text(400, "after must be a line count");
      after = n;
    }
    if (!raw) {
      // No file yet (the job is queued): an empty page that polls for lines.
      const LogSlice slice = read_log_slice(job.log_path).value_or(LogSlice{});
      return html(job.name + " · run #" + std::to_string(id),
                  log_page_body(run, job, slice, query_param(target, "timestamps").value_or("") == "1"));
    }
    if (run.expired_ms != 0) return text(410, retention_note(run.expired_ms));
    auto content = read_log(job.log_path, after);
    if (!content) return text(404, "no log yet for " + job.name);
    http::HttpResponse response = http::HttpResponse::text(200, *content);
    response.headers.set("Content-Type", "text/plain; charset=utf-8");
    response.headers.set("X-Content-Type-Options", "nosniff");
    response.headers.set("Cache-Control", "no-store");
    return response;
  }
  return text(404, "no such job in run " + std::to_string(id));
}

// GET shows the form (or, with ?token=, exchanges the token for the cookie); POST
// takes the form. A token the config does not know gets the form again with 403.
http::HttpResponse Routes::login(const http::HttpRequest& request) {
  if (request.method != "GET" && request.method != "HEAD" && request.method != "POST")
    return text(405, "GET or POST the login form");
  auto fields = request.method == "POST" ? form_fields(request.body)
                                         : query_params(request.target).value_or(decltype(form_fields(""))({}));
  std::optional<std::string> token;
  std::string next = "/runs";
  for (auto& [name, value] : fields) {
    if (name == "token") token = std::move(value);
    if (name == "next" && local_path(value)) next = std::move(value);
  }
  if (request.method != "POST" && !token) return html("sandci login", login_body(next, false));
  auto session = token ? access_.session_for(*token) : std::nullopt;
  if (!session) {
    spdlog::info("event=viewer_login_refused");
    http::HttpResponse refused = html("sandci login", login_body(next, true));
    refused.status = 403;
    return refused;
  }
  spdlog::info("event=viewer_login");
  http::HttpResponse done = see_other(next);
  done.headers.add("Set-Cookie", access_.set_cookie(*session));
  return done;
}

http::HttpResponse Routes::logout() {
  http::HttpResponse done = see_other("/runs");
  done.headers.add("Set-Cookie", access_.set_cookie(""));
  return done;
}

// The run page's admin forms: the session cookie (or bearer) of the admin token and
// the page's CSRF token, from a page of this agent. Anything less changes nothing.
http::HttpResponse Routes::run_form(const http::HttpRequest& request, std::int64_t id, std::string_view action) {
  const Viewer viewer = access_.viewer_of(request);
  std::string csrf;
  for (const auto& [name, value] : form_fields(request.body))
    if (name == "csrf") csrf = value;
  if (!access_.csrf_ok(viewer, request, csrf)) {
    spdlog::warn("event=admin_form_refused run={} action={} reason=csrf", id, action);
    return text(403, "this form did not come from this agent's run page, or the page is out of date: reload it");
  }
  if (!viewer.admin) return text(403, "only the admin token may cancel or re-run runs: log in with it");
  const std::string actor = "admin (run page)";
  http::HttpResponse done = action == "cancel" ? cancel_as(id, actor) : rerun_as(id, action == "rerun-failed", actor);
  if (done.status != 202) return done;
  auto body = json::parse(done.body, nullptr, false);
  const std::int64_t shown = action != "cancel" && body.is_object() && body.contains("run") && body["run"].is_number()
                                 ? body["run"].get<std::int64_t>()
                                 : id;
  return see_other("/runs/" + std::to_string(shown));
}

http::HttpResponse Routes::enqueue(const http::HttpRequest& request) {
  const auto config = config_.get();  // the admin token of now: SIGHUP may replace it
  if (auto refused = refuse_unless_admin(*config, request, "runs cannot be queued by hand")) return *refused;
  json body = json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("repository") || !body["repository"].is_string())
    return text(400, "expected a JSON object with \"repository\" (and \"ref\", \"sha\", \"forge\")");
  auto field = [&body](const char* name, const std::string& fallback) {
    return body.contains(name) && body[name].is_string() ? body[name].get<std::string>() : fallback;
  };
  const std::string name = body["repository"].get<std::string>();
  const config::RepositoryConfig* repo = nullptr;
  for (const auto& candidate : config->repositories)
    if (candidate.name == name && (field("forge", "").empty() || field("forge", "") == config::to_string(candidate.forge)))
      repo = &candidate;
  if (!repo) return text(404, "repository " + name + " is not configured");
  store::NewRun run;
  run.repository = repo->name;
  run.forge = std::string(config::to_string(repo->forge));
  run.event = field("event", "push");
  if (run.event != "push" && run.event != "workflow_dispatch") return text(400, "event must be push or workflow_dispatch");
  std::string ref = field("ref", "refs/heads/main");
  if (ref.rfind("refs/", 0) != 0) ref = "refs/heads/" + ref;
  run.ref = ref;
  run.sha = field("sha", "");
  if (!run.sha.empty() && (run.sha.size() != 40 || run.sha.find_first_not_of("0123456789abcdef") != std::string::npos))
    return text(400, "sha must be 40 lowercase hex digits");
  run.clone_url = repo->clone_url;
  if (run.clone_url.empty()) {
    store::RunFilter filter;
    filter.repository = repo->name;
    filter.limit = 1;
    auto last = store_.list_runs(filter);
    if (last && !last->empty()) run.clone_url = last->front().clone_url;
  }
  if (run.clone_url.empty())
    return text(400, "no clone URL for " + repo->name + ": set clone_url in the config (no webhook has named one yet)");
  run.payload_json = json{{"ref", ref}, {"after", run.sha}, {"repository", {{"full_name", repo->name}}},
                          {"inputs", body.contains("inputs") && body["inputs"].is_object() ? body["inputs"] : json::object()}}
                         .dump();
  run.trigger = "enqueue";
  run.concurrency_key = repo->name + " " + ref;
  auto id = store_.enqueue_run(run, now_());
  if (!id) return text(503, "cannot queue the run: " + id.error().message);
  spdlog::info("event=run_queued run={} repository={} ref={} trigger=enqueue", *id, repo->name, ref);
  if (queued_) queued_(*id);
  return http::HttpResponse::json(202, json{{"run", *id}, {"url", config->run_url(std::to_string(*id))}}.dump());
}

// An admin's cancel: a queued run ends now, a running one is flagged and its worker
// stops it at its next lease check (within a second).
http::HttpResponse Routes::cancel_run(const http::HttpRequest& request, std::int64_t id) {
  const auto config = config_.get();  // the admin token of now: SIGHUP may replace it
  if (auto refused = refuse_unless_admin(*config, request, "runs cannot be cancelled")) return *refused;
  return cancel_as(id, admin_actor(request));
}

http::HttpResponse Routes::cancel_as(std::int64_t id, const std::string& actor) {
  auto run = store_.get_run(id);
  if (!run) return text(503, "the run store does not answer");
  if (!*run) return text(404, "no such run");
  if (store::is_final((*run)->state))
    return text(409, "run " + std::to_string(id) + " already ended: " + std::string(store::to_string((*run)->state)));
  auto done = store_.cancel_run(id, actor, now_());
  if (!done) return text(503, "cannot cancel the run: " + done.error().message);
  if (!*done) return text(409, "run " + std::to_string(id) + " ended meanwhile");
  spdlog::info("event=run_cancel_requested run={} actor=\"{}\"", id, actor);
  auto now = store_.get_run(id);
  const std::string state = now && *now ? std::string(store::to_string((*now)->state)) : "unknown";
  return http::HttpResponse::json(202, json{{"run", id}, {"state", state}, {"actor", actor}}.dump());
}

// An admin's re-run of a finished run: a new run of the same commit and event;
// ?failed_only=1 limits it to the jobs that did not succeed (and what they need).
http::HttpResponse Routes::rerun_run(const http::HttpRequest& request, std::int64_t id) {
  const auto config = config_.get();  // the admin token of now: SIGHUP may replace it
  if (auto refused = refuse_unless_admin(*config, request, "runs cannot be re-run")) return *refused;
  auto query = query_params(request.target);
  if (!query) return text(400, query.error());
  bool failed_only = false;
  for (const auto& [name, value] : *query) {
    if (name != "failed_only") return text(400, "unknown parameter " + name + " (only failed_only)");
    if (value != "0" && value != "1" && value != "true" && value != "false")
      return text(400, "failed_only must be 1 or 0");
    failed_only = value == "1" || value == "true";
  }
  return rerun_as(id, failed_only, admin_actor(request));
}

http::HttpResponse Routes::rerun_as(std::int64_t id, bool failed_only, const std::string& actor) {
  Viewer everything;
  everything.every_repository = true;  // the admin token was checked
  auto loaded = load_run(everything, id);
  if (!loaded) return loaded.error();
  const auto& [original, jobs] = *loaded;
  if (!store::is_final(original.state))
    return text(409, "run " + std::to_string(id) + " is still " + std::string(store::to_string(original.state)) +
                         ": wait for it to end or cancel it first");
  std::vector<std::string> only_jobs;
  if (failed_only) {
    // Every job that did not succeed: a skipped job may have been skipped because a job
    // it needs failed; its `if:` decides again in the re-run.
    for (const auto& job : jobs)
      if (job.state != store::JobState::success) only_jobs.push_back(job.key);
    if (only_jobs.empty()) return text(409, "run " + std::to_string(id) + " has no failed jobs to re-run");
  }
  auto new_id = store_.rerun(id, only_jobs, actor, now_());
  if (!new_id) return text(503, "cannot queue the re-run: " + new_id.error().message);
  if (!*new_id) return text(404, "no such run");
  spdlog::info("event=run_queued run={} repository={} ref={} trigger=rerun rerun_of={} jobs={} actor=\"{}\"",
               **new_id, original.repository, original.ref, id, only_jobs.size(), actor);
  if (queued_) queued_(**new_id);
  return http::HttpResponse::json(
      202, json{{"run", **new_id}, {"rerun_of", id}, {"jobs", only_jobs}, {"url", config_.get()->run_url(std::to_string(**new_id))}}
               .dump());
}

http::HttpResponse Routes::run_actions(const Viewer& viewer, std::int64_t id) {
  auto run = store_.get_run(id);
  if (!run) return text(503, "the run store does not answer");
  if (!*run || !access_.may_view(viewer, (*run)->forge, (*run)->repository)) return text(404, "no such run");
  auto actions = store_.actions_of(id);
  if (!actions) return text(503, "the run store does not answer");
  json out = {{"run", id}, {"actions", json::array()}};
  for (const auto& a : *actions)
    out["actions"].push_back({{"action", a.action}, {"actor", a.actor}, {"at_ms", a.at_ms}, {"detail", a.detail}});
  return http::HttpResponse::json(200, out.dump());
}

// GET /api/runs?repository=&ref=&state=&limit=&before=: newest first; "next_before"
// pages on when the page is full.
http::HttpResponse Routes::runs_json(const Viewer& viewer, const http::HttpRequest& request) {
  auto query = query_params(request.target);
  if (!query) return text(400, query.error());
  store::RunFilter filter;
  for (const auto& [name, value] : *query) {
    if (name == "repository") {
      filter.repository = value;
    } else if (name == "ref") {
      filter.ref = value;
    } else if (name == "state") {
      if (value.empty()) continue;
      filter.state = store::parse_run_state(value);
      if (!filter.state) return text(400, "unknown state " + value + " (queued, running, success, failure, error, cancelled)");
    } else if (name == "limit") {
      auto limit = positive_id(value);
      if (!limit || *limit > 500) return text(400, "limit must be a number from 1 to 500");
      filter.limit = static_cast<std::size_t>(*limit);
    } else if (name == "before") {
      auto before = positive_id(value);
      if (!before) return text(400, "before must be a run id");
      filter.before_id = *before;
    } else {
      return text(400, "unknown parameter " + name + " (repository, ref, state, limit, before)");
    }
  }
  bool more = false;
  auto runs = visible_runs(viewer, filter, more);
  if (!runs) return runs.error();
  json out = {{"runs", json::array()}};
  for (const auto& r : *runs)
    out["runs"].push_back({{"id", r.id}, {"repository", r.repository}, {"forge", r.forge}, {"event", r.event},
                           {"ref", r.ref}, {"sha", r.sha}, {"title", r.title}, {"state", store::to_string(r.state)},
                           {"message", r.message}, {"trigger", r.trigger}, {"attempt", r.attempt},
                           {"only_jobs", r.only_jobs}, {"created_ms", r.created_ms}, {"started_ms", r.started_ms},
                           {"finished_ms", r.finished_ms}});
  if (more && !runs->empty()) out["next_before"] = runs->back().id;
  return http::HttpResponse::json(200, out.dump());
}

}  // namespace sandci::agent::server
