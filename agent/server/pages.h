#pragma once
// The agent's HTML pages, rendered from the run store's records: the run list, a
// run's page (its jobs drawn as an SVG per workflow) and a job's log. Every byte
// that came from a repository, a forge or a job is HTML-escaped here; the pages
// carry no inline script or style, so they work under a CSP of 'self' with the
// script and style sheet served by the agent (pages_script(), pages_style()).
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/store/run_store.h"

namespace sandci::agent::server {

// The value of `name` in the query string of `target` ("/runs?ref=main"), with
// %XX and '+' decoded; nullopt when absent or malformed.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

// The run list's filter from ?repository=&ref=&state=&before=. A branch name
// without "refs/" means refs/heads/<name>; empty values mean "any". An unknown
// state or a before that is not a positive id is an error saying which.
std::expected<store::RunFilter, std::string> run_filter_from_query(std::string_view target);

// One log line's text with ANSI SGR colours (30-37, 90-97, 39, bold 1/22, reset 0)
// as <span class="ansi-..."> and everything else escaped. Other escape sequences are
// dropped. Spans never stay open past the end of the line.
std::string ansi_to_html(std::string_view text);

// A job log (lines "<ISO timestamp> <text>") as HTML: "##[step] name" opens a
// <details> step, "##[group]title"/"##[endgroup]" a nested <details>; each line has
// id="L<n>" (n counts every line of `content`, from `first_line`) and a link to
// itself. Timestamps are shown only when `timestamps`.
struct RenderedLog {
  std::string html;
  std::size_t lines = 0;  // lines of content read, so a poll can ask for the rest
};
RenderedLog render_log(std::string_view content, bool timestamps, std::size_t first_line = 1);

// Part of a log file for a page: whole lines, starting at line first_line, after
// skipped_bytes left out (a long log is shown by its tail).
struct LogSlice {
  std::string content;
  std::size_t first_line = 1;
  std::size_t skipped_bytes = 0;
};

// "logs removed by retention on 2026-11-30 17:40 UTC": what the pages of an expired run
// say (store::RunRecord::expired_ms) instead of its logs.
std::string retention_note(std::int64_t expired_ms);

// The <body> contents of the pages (Routes wraps them with html()).
std::string run_list_body(const std::vector<store::RunRecord>& runs, const store::RunFilter& filter,
                          bool more);
// What the run page shows beyond the run and its jobs.
struct RunPageExtras {
  // The remote actions the run used, each at the commit its ref resolved to.
  std::vector<store::ActionRefRecord> action_refs{};
  // Set for an admin: the page shows the cancel / re-run forms, each carrying it.
  std::optional<std::string> csrf{};
};
// Each workflow's jobs are drawn as an SVG: one column per DAG level (a job's level is
// one more than the deepest job it needs), and one <path class="edge"> per `needs`
// relation from the needed job's box to the job's box.
std::string run_page_body(const store::RunRecord& run, const std::vector<store::JobRecord>& jobs,
                          const RunPageExtras& extras = {});
// The login form; `next` (a local path) is where it returns to; `refused` says the
// last token was not accepted.
std::string login_body(std::string_view next, bool refused);
// The line atop every page: "log in" for a visitor, else who is signed in and a
// log-out button. `here` is the page's own path, to return to after logging in.
std::string viewer_nav(bool signed_in, bool admin, std::string_view here);
std::string log_page_body(const store::RunRecord& run, const store::JobRecord& job, const LogSlice& log,
                          bool timestamps);

// The static assets served at /static/pages.js and /static/pages.css.
std::string_view pages_script();
std::string_view pages_style();

}  // namespace sandci::agent::server
