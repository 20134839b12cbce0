#include "agent/cli/run_view.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace sandci::agent {

namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Terminal columns of sanitized text: one per code point (wide CJK characters are
// counted as one, an accepted approximation).
std::size_t columns(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return !is_continuation(static_cast<unsigned char>(c)); }));
}

// Cuts `s` to at most `width` columns, marking a cut with "…".
std::string fit(std::string_view s, std::size_t width) {
  if (columns(s) <= width) return std::string(s);
  if (width == 0) return {};
  std::size_t keep = width - 1, cols = 0, i = 0;
  for (; i < s.size(); ++i) {
    if (!is_continuation(static_cast<unsigned char>(s[i]))) {
      if (cols == keep) break;
      ++cols;
    }
  }
  return std::string(s.substr(0, i)) + "…";
}

std::string pad_right(std::string s, std::size_t width) {
  std::size_t c = columns(s);
  if (c < width) s.append(width - c, ' ');
  return s;
}

std::string pad_left(std::string s, std::size_t width) {
  std::size_t c = columns(s);
  if (c < width) s.insert(0, width - c, ' ');
  return s;
}

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// One character per state, distinct from each other (no spinner: the running
// durations already show progress).
char state_mark(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return '.';
    case JobState::kRunning:
      return '>';
    case JobState::kSuccess:
      return '+';
    case JobState::kFailure:
      return 'x';
    case JobState::kSkipped:
      return '-';
    case JobState::kCancelled:
      return '!';
  }
  return '?';
}

std::string_view state_color(JobState state) {
  switch (state) {
    case JobState::kQueued:
    case JobState::kSkipped:
      return "\x1b[2m";
    case JobState::kRunning:
      return "\x1b[33m";
    case JobState::kSuccess:
      return "\x1b[32m";
    case JobState::kFailure:
      return "\x1b[31m";
    case JobState::kCancelled:
      return "\x1b[35m";
  }
  return "";
}

std::string duration_or_dash(const JobRow& job, Millis now) {
  auto d = job_duration(job, now);
  return d ? format_duration(*d) : "-";
}

// Which rows to show when they do not all fit: running and failed jobs first.
int row_priority(JobState s) {
  switch (s) {
    case JobState::kRunning:
      return 0;
    case JobState::kFailure:
      return 1;
    case JobState::kCancelled:
      return 2;
    case JobState::kQueued:
      return 3;
    case JobState::kSuccess:
      return 4;
    case JobState::kSkipped:
      return 5;
  }
  return 6;
}

constexpr std::size_t kStateWidth = 9;     // "cancelled"
constexpr std::size_t kDurationWidth = 7;  // "59m59s" and a bit

std::string job_line(const JobRow& job, Millis now, std::size_t name_width, std::size_t width) {
  std::string prefix = std::string(1, state_mark(job.state)) + " " +
                       pad_right(fit(job.name, name_width), name_width) + "  ";
  std::string state = pad_right(std::string(to_string(job.state)), kStateWidth);
  std::string suffix = " " + pad_left(duration_or_dash(job, now), kDurationWidth);
  std::string plain = prefix + state + suffix;
  if (columns(plain) > width) return fit(rtrim(plain), width);  // too narrow for colors
  return prefix + std::string(state_color(job.state)) + state + "\x1b[0m" + rtrim(suffix);
}

std::string header_line(const RunView& view, Millis now) {
  std::size_t done = 0, running = 0, failed = 0;
  for (const auto& j : view.jobs) {
    done += is_finished(j.state);
    running += j.state == JobState::kRunning;
    failed += j.state == JobState::kFailure;
  }
  std::string s = "sandci run  " + format_duration(now) + "  " + std::to_string(done) + "/" +
                  std::to_string(view.jobs.size()) + " jobs done";
  if (running) s += ", " + std::to_string(running) + " running";
  if (failed) s += ", " + std::to_string(failed) + " failed";
  if (view.cancelled) s += ", cancelling";
  return s;
}

}  // namespace

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSuccess:
      return "success";
    case JobState::kFailure:
      return "failure";
    case JobState::kSkipped:
      return "skipped";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

bool is_finished(JobState state) {
  return state != JobState::kQueued && state != JobState::kRunning;
}

void append_tail(JobRow& job, std::string_view line, std::size_t keep) {
  job.tail.emplace_back(line);
  while (job.tail.size() > keep) job.tail.pop_front();
}

JobState run_result(const RunView& view) {
  if (view.cancelled) return JobState::kCancelled;
  bool failed = std::any_of(view.jobs.begin(), view.jobs.end(), [](const JobRow& j) {
    return j.state == JobState::kFailure || j.state == JobState::kCancelled;
  });
  return failed ? JobState::kFailure : JobState::kSuccess;
}

std::string format_duration(Millis d) {
  long long ms = std::max<long long>(0, d.count());
  char buf[32];
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%lld.%llds", ms / 1000, (ms % 1000) / 100);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60'000, (ms % 60'000) / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", ms / 3'600'000, (ms % 3'600'000) / 60'000);
  }
  return buf;
}

std::optional<Millis> job_duration(const JobRow& job, Millis now) {
  if (!job.started) return std::nullopt;
  Millis end = job.finished ? *job.finished : now;
  return std::max(Millis(0), end - *job.started);
}

std::string sanitize_for_terminal(std::string_view line) {
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      // CSI: ESC [ params final(0x40-0x7E); OSC: ESC ] ... BEL or ESC \; others: 2 bytes.
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && !(line[i] >= 0x40 && line[i] <= 0x7e)) ++i;
      } else if (i + 1 < line.size() && line[i + 1] == ']') {
        i += 2;
        while (i < line.size() && line[i] != '\a' &&
               !(line[i] == 0x1b && i + 1 < line.size() && line[i + 1] == '\\'))
          ++i;
        if (i < line.size() && line[i] == 0x1b) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '\r') {
      // What follows a carriage return overwrites the line (progress bars), unless it is
      // the line end.
      if (i + 1 < line.size() && line[i + 1] != '\n') out.clear();
      continue;
    }
    if (c == '\t') {
      out += ' ';
      continue;
    }
    if (c < 0x20 || c == 0x7f) continue;
    out += static_cast<char>(c);
  }
  return out;
}

std::string plain_line(std::string_view job, std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  std::string out = "[";
  out += job;
  out += "] ";
  out += line;
  return out;
}

std::string plain_event(const JobRow& job, Millis now) {
  switch (job.state) {
    case JobState::kQueued:
      return plain_line(job.name, "queued");
    case JobState::kRunning:
      return plain_line(job.name, "started");
    case JobState::kSkipped:
      return plain_line(job.name, "skipped");
    default:
      break;
  }
  std::string text(to_string(job.state));
  if (auto d = job_duration(job, now)) text += " (" + format_duration(*d) + ")";
  return plain_line(job.name, text);
}

LiveFrame render_live_frame(const RunView& view, Millis now, TerminalSize size, int previous_lines,
                            std::size_t tail_lines) {
  const std::size_t width = static_cast<std::size_t>(std::max(size.width, 1));
  const std::size_t budget = static_cast<std::size_t>(std::max(size.height - 1, 1));
  std::vector<std::string> lines;
  lines.push_back(fit(header_line(view, now), width));

  // Job rows: all of them when they fit, else the most interesting in plan order and a
  // line counting the rest.
  std::vector<std::size_t> shown(view.jobs.size());
  for (std::size_t i = 0; i < shown.size(); ++i) shown[i] = i;
  std::size_t hidden = 0;
  if (1 + view.jobs.size() > budget) {
    std::size_t room = budget >= 3 ? budget - 2 : 0;
    std::stable_sort(shown.begin(), shown.end(), [&](std::size_t a, std::size_t b) {
      return row_priority(view.jobs[a].state) < row_priority(view.jobs[b].state);
    });
    hidden = shown.size() - std::min(room, shown.size());
    shown.resize(std::min(room, shown.size()));
    std::sort(shown.begin(), shown.end());
  }
  std::size_t longest = 0;
  for (std::size_t i : shown) longest = std::max(longest, columns(view.jobs[i].name));
  const std::size_t fixed = 2 + 2 + kStateWidth + 1 + kDurationWidth;
  std::size_t name_width = width > fixed ? std::min(longest, width - fixed) : longest;
  for (std::size_t i : shown) lines.push_back(job_line(view.jobs[i], now, name_width, width));
  if (hidden > 0 && lines.size() < budget)
    lines.push_back(fit("  … and " + std::to_string(hidden) + " more jobs", width));

  // Log tails of running jobs: share the remaining lines out one at a time, so every
  // running job gets some before any gets many.
  std::vector<std::size_t> running, quota;
  for (std::size_t i = 0; i < view.jobs.size(); ++i) {
    if (view.jobs[i].state == JobState::kRunning && !view.jobs[i].tail.empty()) {
      running.push_back(i);
      quota.push_back(0);
    }
  }
  std::size_t room = budget > lines.size() ? budget - lines.size() : 0;
  for (bool gave = true; gave && room > 0;) {
    gave = false;
    for (std::size_t r = 0; r < running.size() && room > 0; ++r) {
      std::size_t want = std::min(tail_lines, view.jobs[running[r]].tail.size());
      if (quota[r] < want) {
        ++quota[r];
        --room;
        gave = true;
      }
    }
  }
  for (std::size_t r = 0; r < running.size(); ++r) {
    const auto& job = view.jobs[running[r]];
    for (std::size_t k = job.tail.size() - quota[r]; k < job.tail.size(); ++k)
      lines.push_back(fit(plain_line(job.name, sanitize_for_terminal(job.tail[k])), width));
  }

  LiveFrame frame;
  if (previous_lines > 0) frame.text = "\x1b[" + std::to_string(previous_lines) + "F";
  for (const auto& l : lines) frame.text += "\x1b[2K" + l + "\n";
  frame.text += "\x1b[J";  // clears what remains of a taller previous frame
  frame.lines = static_cast<int>(lines.size());
  return frame;
}

std::string render_summary(const RunView& view, Millis now) {
  std::size_t name_width = std::string_view("Total").size();
  for (const auto& j : view.jobs) name_width = std::max(name_width, columns(j.name));
  auto row = [&](std::string_view name, std::string_view result, const std::string& dur) {
    return rtrim(pad_right(std::string(name), name_width) + "  " +
                 pad_right(std::string(result), kStateWidth) + "  " +
                 pad_left(dur, std::string_view("Duration").size())) +
           "\n";
  };
  std::string rule = std::string(name_width, '-') + "  " + std::string(kStateWidth, '-') + "  " +
                     std::string(8, '-') + "\n";
  std::string out = row("Job", "Result", "Duration") + rule;
  std::array<std::size_t, 6> counts{};
  for (const auto& j : view.jobs) {
    out += row(j.name, to_string(j.state), duration_or_dash(j, now));
    ++counts[static_cast<std::size_t>(j.state)];
  }
  out += rule;
  JobState result = run_result(view);
  out += row("Total", to_string(result), format_duration(now));
  static constexpr std::array<std::pair<JobState, std::string_view>, 6> kWords{{
      {JobState::kSuccess, "succeeded"},
      {JobState::kFailure, "failed"},
      {JobState::kCancelled, "cancelled"},
      {JobState::kSkipped, "skipped"},
      {JobState::kRunning, "running"},
      {JobState::kQueued, "queued"},
  }};
  std::string tally;
  for (auto [state, word] : kWords) {
    if (std::size_t n = counts[static_cast<std::size_t>(state)]) {
      tally += (tally.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(word);
    }
  }
  out += std::to_string(view.jobs.size()) + (view.jobs.size() == 1 ? " job" : " jobs") +
         (tally.empty() ? "" : ": " + tally) + "\n";
  return out;
}

}  // namespace sandci::agent
