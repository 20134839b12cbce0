#pragma once
// What `sandci run` shows while a run goes on and when it ends: pure functions over a
// small snapshot of the run (RunView), so the output is testable without a terminal.
//  - plain mode (not a terminal, or --plain): every log line prefixed "[job] ";
//  - live mode (a terminal): a frame redrawn in place (job list with states and
//    durations, then the last lines of the running jobs' logs), fitted to the terminal;
//  - the summary table printed at the end, in both modes.
// Times are durations since the run started, passed in, so rendering never reads a clock.
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::agent {

using Millis = std::chrono::milliseconds;

enum class JobState { kQueued, kRunning, kSuccess, kFailure, kSkipped, kCancelled };
std::string_view to_string(JobState state);  // "queued", "running", "success", ...
bool is_finished(JobState state);

struct JobRow {
  std::string name;  // display name, e.g. "build (-O2)"
  JobState state = JobState::kQueued;
  std::optional<Millis> started;   // since the run started
  std::optional<Millis> finished;  // since the run started
  std::deque<std::string> tail;    // the job's last log lines, oldest first
};

struct RunView {
  std::vector<JobRow> jobs;  // in plan order
  bool cancelled = false;    // the user cancelled the run (Ctrl-C)
};

// Adds a log line to a job's tail, keeping the last `keep` lines.
void append_tail(JobRow& job, std::string_view line, std::size_t keep);

// The run's result: cancelled if the user cancelled it; failure if a job failed or was
// cancelled (e.g. by fail-fast); success otherwise (skipped jobs do not fail a run).
JobState run_result(const RunView& view);

// "0.4s", "12.3s" (tenths cut, not rounded), "1m05s", "2h03m".
std::string format_duration(Millis d);

// How long a job ran: until it finished, or until `now` while it runs; none if it never
// started.
std::optional<Millis> job_duration(const JobRow& job, Millis now);

// Removes what would disturb a terminal: escape sequences, control characters (a '\r'
// keeps only what follows it, as a terminal would show), tabs become spaces.
std::string sanitize_for_terminal(std::string_view line);

// ---- plain mode ----------------------------------------------------------------------

// "[job] line" (a trailing '\r' or '\n' of `line` is dropped).
std::string plain_line(std::string_view job, std::string_view line);
// A job's state change as a plain line: "[job] started", "[job] success (3.2s)",
// "[job] skipped".
std::string plain_event(const JobRow& job, Millis now);

// ---- live mode -----------------------------------------------------------------------

struct TerminalSize {
  int width = 80;
  int height = 24;
};

struct LiveFrame {
  std::string text;  // write as is to the terminal
  int lines = 0;     // pass as previous_lines to the next render
};

// Draws the run over the previous frame (`previous_lines` lines above the cursor): no
// line wider than `size.width` columns, at most `size.height - 1` lines so the terminal
// never scrolls. Each running job shows up to `tail_lines` of its latest log lines
// while room remains.
LiveFrame render_live_frame(const RunView& view, Millis now, TerminalSize size, int previous_lines,
                            std::size_t tail_lines = 5);

// ---- summary -------------------------------------------------------------------------

// The table printed at the end: one row per job (name, result, duration), then the
// total with the run's result and the counts by result. `now` is the run's duration.
std::string render_summary(const RunView& view, Millis now);

}  // namespace sandci::agent
