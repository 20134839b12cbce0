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

std::string workflow_svg(std::int64_t run, const std::vector<const store::JobRecord*>& jobs) {
  // One row per job, in the order stored, and no edges drawn: the store keeps no
  // `needs`, and a line between rows would claim a dependency nobody checked.
  constexpr int kRow = 44, kWidth = 640;
  const int height = static_cast<int>(jobs.size()) * kRow + 8;
  std::string svg = "<svg class=\"dag\" role=\"list\" viewBox=\"0 0 " + std::to_string(kWidth) + " " +
                    std::to_string(height) + "\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\">";
  int y = 4;
  for (const auto* job : jobs) {
    const std::string state(store::to_string(job->state));
    const std::string key = html_escape(job->key);
    const std::string ys = std::to_string(y);
    const std::string mid = std::to_string(y + 24);
    svg += "<a role=\"listitem\" href=\"" + html_escape(log_href(run, job->key)) + "\">";
    svg += "<rect class=\"box st-" + state + "\" data-key=\"" + key + "\" x=\"4\" y=\"" + ys + "\" width=\"" +
           std::to_string(kWidth - 8) + "\" height=\"" + std::to_string(kRow - 8) + "\" rx=\"6\"/>";
    svg += "<circle class=\"dot st-" + state + "\" data-key=\"" + key + "\" cx=\"22\" cy=\"" +
           std::to_string(y + 18) + "\" r=\"7\"/>";
    svg += "<text class=\"name\" x=\"40\" y=\"" + mid + "\">" + html_escape(job->name) + "</text>";
    svg += "<text class=\"jstate st-" + state + "\" data-key=\"" + key + "\" x=\"" + std::to_string(kWidth - 150) +
           "\" y=\"" + mid + "\">" + state + "</text>";
    svg += "<text class=\"dur\" data-key=\"" + key + "\" x=\"" + std::to_string(kWidth - 60) + "\" y=\"" + mid +
           "\">" + job_duration(*job) + "</text></a>";
    y += kRow;
  }
  return svg + "</svg>";
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

std::string run_page_body(const store::RunRecord& run, const std::vector<store::JobRecord>& jobs) {
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
  return body;
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
