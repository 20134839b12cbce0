#include "agent/server/pages.h"

#include <charconv>
#include <ctime>
#include <map>

#include "agent/server/routes.h"
#include "agent/server/run_reporter.h"

namespace sandci::agent::server {
namespace {

std::string format_time(std::int64_t ms) {
  if (ms <= 0) return "";
  std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string short_ref(std::string_view ref) {
  for (std::string_view prefix : {"refs/heads/", "refs/tags/"})
    if (ref.rfind(prefix, 0) == 0) return std::string(ref.substr(prefix.size()));
  return std::string(ref);
}

std::string job_duration(const store::JobRecord& job) {
  return job.started_ms && job.finished_ms ? human_duration(job.finished_ms - job.started_ms) : "";
}

std::string log_href(std::int64_t run, const std::string& key) {
  return "/runs/" + std::to_string(run) + "/jobs/" + percent_encode(key) + "/log";
}

std::string state_badge(std::string_view state, std::string_view extra_attributes = "") {
  const std::string s(state);
  return "<span class=\"badge st-" + s + "\"" + std::string(extra_attributes) + ">" + s + "</span>";
}

// The list's query string for the next page: the same filters, an older start.
std::string page_query(const store::RunFilter& filter, std::int64_t before) {
  std::string q = "?before=" + std::to_string(before);
  if (!filter.repository.empty()) q += "&amp;repository=" + percent_encode(filter.repository);
  if (!filter.ref.empty()) q += "&amp;ref=" + percent_encode(filter.ref);
  if (filter.state) q += "&amp;state=" + std::string(store::to_string(*filter.state));
  return q;
}

// SGR state carried along one line.
struct Sgr {
  int fg = 0;  // 0: default
  bool bold = false;
  bool plain() const { return fg == 0 && !bold; }
  std::string classes() const {
    std::string c;
    if (fg) c += "ansi-" + std::to_string(fg);
    if (bold) c += std::string(c.empty() ? "" : " ") + "ansi-bold";
    return c;
  }
};

void apply_sgr(std::string_view params, Sgr& sgr) {
  if (params.empty()) {
    sgr = {};
    return;
  }
  while (true) {
    const auto semi = params.find(';');
    const std::string_view part = params.substr(0, semi);
    int code = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), code);
    if (part.empty() || (ec == std::errc() && end == part.data() + part.size())) {
      if (part.empty() || code == 0) sgr = {};
      else if (code == 1) sgr.bold = true;
      else if (code == 22) sgr.bold = false;
      else if (code == 39) sgr.fg = 0;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) sgr.fg = code;
    }
    if (semi == std::string_view::npos) break;
    params.remove_prefix(semi + 1);
  }
}

struct LogLine {
  std::string_view timestamp, text;
};

// "<timestamp> <text>": the first word is a timestamp when it starts with a digit
// and holds only digits and "T:.-+Z" with a ':' (ISO "2026-11-30T13:00:00Z" or the
// runner's "13:00:00.123"); any other line is all text.
LogLine split_line(std::string_view line) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || line[0] < '0' || line[0] > '9') return {{}, line};
  const std::string_view word = line.substr(0, space);
  if (word.find(':') == std::string_view::npos ||
      word.find_first_not_of("0123456789T:.-+Z") != std::string_view::npos)
    return {{}, line};
  return {word, line.substr(space + 1)};
}

std::string line_html(std::size_t number, const LogLine& line, bool timestamps) {
  const std::string n = std::to_string(number);
  std::string out = "<div class=\"ln\" id=\"L" + n + "\"><a class=\"num\" href=\"#L" + n + "\">" + n + "</a>";
  if (timestamps && !line.timestamp.empty()) out += "<span class=\"ts\">" + html_escape(line.timestamp) + "</span>";
  return out + "<span class=\"tx\">" + ansi_to_html(line.text) + "</span></div>";
}

std::string summary_html(std::size_t number, std::string_view title, std::string_view css) {
  const std::string n = std::to_string(number);
  return "<details open class=\"" + std::string(css) + "\" id=\"L" + n + "\"><summary><a class=\"num\" href=\"#L" + n +
         "\">" + n + "</a>" + ansi_to_html(title) + "</summary>";
}

constexpr std::string_view kStep = "##[step]";
constexpr std::string_view kGroup = "##[group]";
constexpr std::string_view kEndGroup = "##[endgroup]";

// Each job's DAG level within its workflow: 0 without needs, else one more than the
// deepest job it needs. Needs outside the workflow are ignored; the bound on rounds
// keeps a (never planned) cycle from looping.
std::map<std::string, int> dag_levels(const std::vector<const store::JobRecord*>& jobs) {
  std::map<std::string, int> level;
  for (const auto* job : jobs) level[job->key] = 0;
  for (std::size_t round = 0; round < jobs.size(); ++round) {
    bool changed = false;
    for (const auto* job : jobs)
      for (const auto& need : job->needs) {
        auto it = level.find(need);
        if (it != level.end() && it->first != job->key && level[job->key] < it->second + 1) {
          level[job->key] = it->second + 1;
          changed = true;
        }
      }
    if (!changed) break;
  }
  return level;
}

// A name that fits a box; the whole name is the box's <title>.
std::string fitted(std::string_view name) {
  constexpr std::size_t kChars = 22;
  if (name.size() <= kChars) return std::string(name);
  std::size_t cut = kChars - 1;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return std::string(name.substr(0, cut)) + "\u2026";
}

std::string workflow_svg(std::int64_t run, const std::vector<const store::JobRecord*>& jobs) {
  constexpr int kBoxW = 200, kBoxH = 46, kColGap = 56, kRowGap = 14, kMargin = 4;
  const auto level = dag_levels(jobs);
  std::vector<std::vector<const store::JobRecord*>> columns;
  for (const auto* job : jobs) {
    const auto l = static_cast<std::size_t>(level.at(job->key));
    if (columns.size() <= l) columns.resize(l + 1);
    columns[l].push_back(job);
  }
  struct Point {
    int x, y;
  };
  std::map<std::string, Point> at;
  std::size_t rows = 0;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    rows = std::max(rows, columns[c].size());
    for (std::size_t r = 0; r < columns[c].size(); ++r)
      at[columns[c][r]->key] = {kMargin + static_cast<int>(c) * (kBoxW + kColGap),
                                kMargin + static_cast<int>(r) * (kBoxH + kRowGap)};
  }
  const int width = static_cast<int>(columns.size()) * (kBoxW + kColGap) - kColGap + 2 * kMargin;
  const int height = static_cast<int>(rows) * (kBoxH + kRowGap) - kRowGap + 2 * kMargin;
  auto n = [](int v) { return std::to_string(v); };
  std::string svg = "<svg class=\"dag\" role=\"list\" viewBox=\"0 0 " + n(width) + " " + n(height) + "\" width=\"" +
                    n(width) + "\" preserveAspectRatio=\"xMinYMin meet\">";
  // Edges first, so the boxes lie on top of any that pass behind them.
  for (const auto* job : jobs)
    for (const auto& need : job->needs) {
      auto from = at.find(need);
      if (from == at.end() || need == job->key) continue;
      const Point a{from->second.x + kBoxW, from->second.y + kBoxH / 2};
      const Point b{at.at(job->key).x, at.at(job->key).y + kBoxH / 2};
      const int bend = (b.x - a.x) / 2;
      svg += "<path class=\"edge\" data-from=\"" + html_escape(need) + "\" data-to=\"" + html_escape(job->key) +
             "\" d=\"M" + n(a.x) + " " + n(a.y) + " C" + n(a.x + bend) + " " + n(a.y) + " " + n(b.x - bend) + " " +
             n(b.y) + " " + n(b.x) + " " + n(b.y) + "\"/>";
    }
  for (const auto* job : jobs) {
    const std::string state(store::to_string(job->state));
    const std::string key = html_escape(job->key);
    const Point p = at.at(job->key);
    svg += "<a role=\"listitem\" href=\"" + html_escape(log_href(run, job->key)) + "\"><title>" +
           html_escape(job->name) + "</title>";
    svg += "<rect class=\"box st-" + state + "\" data-key=\"" + key + "\" x=\"" + n(p.x) + "\" y=\"" + n(p.y) +
           "\" width=\"" + n(kBoxW) + "\" height=\"" + n(kBoxH) + "\" rx=\"6\"/>";
    svg += "<circle class=\"dot st-" + state + "\" data-key=\"" + key + "\" cx=\"" + n(p.x + 15) + "\" cy=\"" +
           n(p.y + 16) + "\" r=\"6\"/>";
    svg += "<text class=\"name\" x=\"" + n(p.x + 28) + "\" y=\"" + n(p.y + 21) + "\">" + html_escape(fitted(job->name)) +
           "</text>";
    svg += "<text class=\"jstate st-" + state + "\" data-key=\"" + key + "\" x=\"" + n(p.x + 28) + "\" y=\"" +
           n(p.y + 39) + "\">" + state + "</text>";
    svg += "<text class=\"dur\" data-key=\"" + key + "\" x=\"" + n(p.x + kBoxW - 8) + "\" y=\"" + n(p.y + 39) +
           "\" text-anchor=\"end\">" + job_duration(*job) + "</text></a>";
  }
  return svg + "</svg>";
}

// The cancel / re-run forms an admin sees, each carrying the CSRF token.
std::string admin_forms(const store::RunRecord& run, const std::vector<store::JobRecord>& jobs,
                        const std::string& csrf) {
  const std::string base = "/runs/" + std::to_string(run.id) + "/";
  auto form = [&](const char* action, const char* label) {
    return "<form method=\"post\" action=\"" + base + action + "\"><input type=\"hidden\" name=\"csrf\" value=\"" +
           html_escape(csrf) + "\"><button class=\"" + action + "\">" + label + "</button></form>";
  };
  std::string out = "<div class=\"admin\">";
  if (!store::is_final(run.state)) {
    out += form("cancel", "Cancel run");
  } else {
    out += form("rerun", "Re-run");
    bool failed = false;
    for (const auto& job : jobs) failed = failed || job.state != store::JobState::success;
    if (failed) out += form("rerun-failed", "Re-run failed jobs");
  }
  return out + "</div>";
}

std::string action_refs_html(const std::vector<store::ActionRefRecord>& refs) {
  if (refs.empty()) return "";
  std::string out = "<section class=\"actions\"><h2>Actions used</h2><table class=\"runs\"><thead><tr><th>action</th>"
                    "<th>ref</th><th>commit</th></tr></thead><tbody>";
  for (const auto& ref : refs)
    out += "<tr><td>" + html_escape(ref.repository) + "</td><td>" + html_escape(ref.ref) + "</td><td><code title=\"" +
           html_escape(ref.url) + "\">" + html_escape(ref.commit) + "</code>" +
           (ref.from_cache ? " <span class=\"note\">(from the cache: the source could not be reached)</span>" : "") +
           "</td></tr>";
  return out + "</tbody></table></section>";
}

}  // namespace

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  auto params = query_params(target);
  if (!params) return std::nullopt;
  for (auto& [key, value] : *params)
    if (key == name) return std::move(value);
  return std::nullopt;
}

std::expected<store::RunFilter, std::string> run_filter_from_query(std::string_view target) {
  store::RunFilter filter;
  filter.limit = 50;
  filter.repository = query_param(target, "repository").value_or("");
  filter.ref = query_param(target, "ref").value_or("");
  if (!filter.ref.empty() && filter.ref.rfind("refs/", 0) != 0) filter.ref = "refs/heads/" + filter.ref;
  const std::string state = query_param(target, "state").value_or("");
  if (!state.empty()) {
    filter.state = store::parse_run_state(state);
    if (!filter.state) return std::unexpected("unknown state \"" + state + "\" (queued, running, success, failure, error, cancelled)");
  }
  const std::string before = query_param(target, "before").value_or("");
  if (!before.empty()) {
    filter.before_id = positive_id(before);
    if (!filter.before_id) return std::unexpected("before must be a run id, not \"" + before + "\"");
  }
  return filter;
}

std::string ansi_to_html(std::string_view text) {
  std::string out;
  Sgr sgr;
  bool open = false;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '\x1b') {
      const auto next = text.find('\x1b', i);
      const std::string_view run = text.substr(i, next == std::string_view::npos ? std::string_view::npos : next - i);
      out += html_escape(run);
      i += run.size();
      continue;
    }
    // ESC [ params final: only 'm' (SGR) means something here; the rest is dropped.
    std::size_t j = i + 1;
    if (j < text.size() && text[j] == '[') {
      ++j;
      const std::size_t params = j;
      while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == ';')) ++j;
      if (j < text.size() && text[j] == 'm') {
        apply_sgr(text.substr(params, j - params), sgr);
        if (open) out += "</span>";
        open = !sgr.plain();
        if (open) out += "<span class=\"" + sgr.classes() + "\">";
      }
      if (j < text.size()) ++j;
    }
    i = j;
  }
  if (open) out += "</span>";
  return out;
}

RenderedLog render_log(std::string_view content, bool timestamps, std::size_t first_line) {
  RenderedLog out;
  out.html = "<div class=\"log\" id=\"log\">";
  bool in_step = false;
  int groups = 0;
  while (!content.empty()) {
    const auto nl = content.find('\n');
    std::string_view raw = content.substr(0, nl);
    content = nl == std::string_view::npos ? std::string_view() : content.substr(nl + 1);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    const std::size_t number = first_line + out.lines++;
    const LogLine line = split_line(raw);
    if (line.text.rfind(kStep, 0) == 0) {
      for (; groups > 0; --groups) out.html += "</details>";
      if (in_step) out.html += "</details>";
      std::string_view name = line.text.substr(kStep.size());
      while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
      out.html += summary_html(number, name, "step");
      in_step = true;
    } else if (line.text.rfind(kGroup, 0) == 0) {
      out.html += summary_html(number, line.text.substr(kGroup.size()), "group");
      ++groups;
    } else if (line.text.rfind(kEndGroup, 0) == 0 && groups > 0) {
      out.html += "</details>";
      --groups;
    } else {
      out.html += line_html(number, line, timestamps);
    }
  }
  for (; groups > 0; --groups) out.html += "</details>";
  if (in_step) out.html += "</details>";
  out.html += "</div>";
  return out;
}

std::string run_list_body(const std::vector<store::RunRecord>& runs, const store::RunFilter& filter, bool more) {
  std::string body = "<header><h1><a href=\"/runs\">sandci</a> runs</h1></header>";
  body += "<form class=\"filter\" method=\"get\" action=\"/runs\">"
          "<label>repository <input name=\"repository\" value=\"" + html_escape(filter.repository) + "\"></label>"
          "<label>branch <input name=\"ref\" value=\"" + html_escape(short_ref(filter.ref)) + "\"></label>"
          "<label>state <select name=\"state\"><option value=\"\">any</option>";
  for (auto state : {store::RunState::queued, store::RunState::running, store::RunState::success,
                     store::RunState::failure, store::RunState::error, store::RunState::cancelled}) {
    const std::string s(store::to_string(state));
    body += "<option" + std::string(filter.state == state ? " selected" : "") + ">" + s + "</option>";
  }
  body += "</select></label><button>filter</button></form>";
  if (runs.empty()) return body + "<p class=\"empty\">No runs match.</p>";
  body += "<table class=\"runs\"><thead><tr><th>run</th><th>state</th><th>repository</th><th>branch</th>"
          "<th>commit</th><th>queued</th></tr></thead><tbody>";
  for (const auto& run : runs) {
    const std::string href = "/runs/" + std::to_string(run.id);
    body += "<tr><td><a href=\"" + href + "\">#" + std::to_string(run.id) + "</a></td><td>" +
            state_badge(store::to_string(run.state)) + "</td><td>" + html_escape(run.repository) + "</td><td>" +
            html_escape(short_ref(run.ref)) + "</td><td><a href=\"" + href + "\"><code>" +
            html_escape(run.sha.substr(0, 7)) + "</code> " + html_escape(run.title) + "</a></td><td>" +
            format_time(run.created_ms) + "</td></tr>";
  }
  body += "</tbody></table>";
  if (more) body += "<p><a class=\"next\" href=\"/runs" + page_query(filter, runs.back().id) + "\">older runs</a></p>";
  return body;
}

std::string retention_note(std::int64_t expired_ms) {
  return "logs removed by retention on " + format_time(expired_ms);
}

std::string run_page_body(const store::RunRecord& run, const std::vector<store::JobRecord>& jobs,
                          const RunPageExtras& extras) {
  const std::string id = std::to_string(run.id);
  std::string body = "<header><a href=\"/runs\">sandci</a> / <a href=\"/runs?repository=" +
                     html_escape(percent_encode(run.repository)) + "\">" + html_escape(run.repository) +
                     "</a> / run #" + id + "</header>";
  body += "<h1 class=\"title\">" + html_escape(run.title.empty() ? run.sha.substr(0, 12) : run.title) + "</h1>";
  body += "<dl class=\"facts\"><dt>state</dt><dd>" + state_badge(store::to_string(run.state), " id=\"run-state\"") +
          "</dd><dt>commit</dt><dd><code>" + html_escape(run.sha) + "</code></dd><dt>event</dt><dd>" +
          html_escape(run.event) + "</dd><dt>ref</dt><dd>" + html_escape(run.ref) + "</dd><dt>queued</dt><dd>" +
          format_time(run.created_ms) + "</dd></dl>";
  body += "<p class=\"message\" id=\"run-message\">" + html_escape(run.message) + "</p>";
  if (run.expired_ms != 0) body += "<p class=\"note\" id=\"retention-note\">" + retention_note(run.expired_ms) + "</p>";
  if (extras.csrf) body += admin_forms(run, jobs, *extras.csrf);
  // Workflows in the order their first job was stored.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const store::JobRecord*>> by_workflow;
  for (const auto& job : jobs) {
    auto& list = by_workflow[job.workflow];
    if (list.empty()) order.push_back(job.workflow);
    list.push_back(&job);
  }
  if (jobs.empty()) body += "<p class=\"empty\">No jobs yet.</p>";
  for (const auto& workflow : order)
    body += "<section class=\"workflow\"><h2>" + html_escape(workflow) + "</h2>" +
            workflow_svg(run.id, by_workflow[workflow]) + "</section>";
  return body + action_refs_html(extras.action_refs);
}

std::string login_body(std::string_view next, bool refused) {
  std::string body = "<header><a href=\"/runs\">sandci</a> / log in</header><h1>Log in</h1>";
  if (refused) body += "<p class=\"refused\" id=\"login-refused\">This token is not accepted.</p>";
  body += "<p>Private repositories' runs need a viewer token (or the admin token).</p>"
          "<form class=\"login\" method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"" +
          html_escape(next) +
          "\"><label>token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>"
          "<button>Log in</button></form>";
  return body;
}

std::string viewer_nav(bool signed_in, bool admin, std::string_view here) {
  if (!signed_in)
    return "<nav class=\"who\"><a id=\"login\" href=\"/login?next=" + html_escape(percent_encode(here)) +
           "\">log in</a></nav>";
  return std::string("<nav class=\"who\"><span id=\"signed-in\">signed in") + (admin ? " (admin)" : "") +
         "</span> <form method=\"post\" action=\"/logout\"><button>log out</button></form></nav>";
}

std::string log_page_body(const store::RunRecord& run, const store::JobRecord& job, const LogSlice& slice,
                          bool timestamps) {
  const std::string id = std::to_string(run.id);
  const RenderedLog log = render_log(slice.content, timestamps, slice.first_line);
  const std::string href = log_href(run.id, job.key);
  std::string body = "<header><a href=\"/runs\">sandci</a> / <a href=\"/runs/" + id + "\">run #" + id + "</a> / " +
                     html_escape(job.workflow) + "</header>";
  body += "<h1>" + html_escape(job.name) + " " +
          state_badge(store::to_string(job.state), " id=\"job-state\"") + "</h1>";
  body += "<p class=\"tools\"><a href=\"" + html_escape(href) + (timestamps ? "\">hide" : "?timestamps=1\">show") +
          " timestamps</a> · <a href=\"" + html_escape(href) + "?raw=1\">raw</a></p>";
  if (run.expired_ms != 0) body += "<p class=\"note\" id=\"retention-note\">" + retention_note(run.expired_ms) + "</p>";
  if (slice.skipped_bytes > 0)
    body += "<p class=\"note\">The first " + std::to_string(slice.skipped_bytes) + " bytes (" +
            std::to_string(slice.first_line - 1) + " lines) of this log are left out.</p>";
  body += "<div id=\"log-live\" data-run=\"" + id + "\" data-job=\"" + html_escape(job.key) + "\" data-lines=\"" +
          std::to_string(slice.first_line - 1 + log.lines) + "\" data-timestamps=\"" + (timestamps ? "1" : "0") + "\"></div>";
  return body + log.html;
}

}  // namespace sandci::agent::server
