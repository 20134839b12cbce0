#include "agent/cli/run_view.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sandci::agent {
namespace {

using namespace std::chrono_literals;

JobRow row(std::string name, JobState state, std::optional<Millis> started = std::nullopt,
           std::optional<Millis> finished = std::nullopt) {
  JobRow r;
  r.name = std::move(name);
  r.state = state;
  r.started = started;
  r.finished = finished;
  return r;
}

// The c-hello pipeline, mid-run.
RunView diamond() {
  RunView v;
  v.jobs.push_back(row("version", JobState::kSuccess, 0ms, 420ms));
  v.jobs.push_back(row("lint", JobState::kSuccess, 450ms, 1'900ms));
  v.jobs.push_back(row("build (-O0)", JobState::kFailure, 450ms, 3'250ms));
  v.jobs.push_back(row("build (-O2)", JobState::kRunning, 460ms));
  v.jobs.push_back(row("test (-O0)", JobState::kSkipped));
  v.jobs.push_back(row("report", JobState::kQueued));
  return v;
}

// Visible columns of one frame line: escape sequences removed, UTF-8 counted per
// code point.
std::size_t visible_columns(const std::string& line) {
  std::string s = sanitize_for_terminal(line);
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<std::string> frame_lines(const std::string& text) {
  std::vector<std::string> out;
  std::string body = text;
  if (body.ends_with("\x1b[J")) body.resize(body.size() - 3);
  std::stringstream ss(body);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration(0ms), "0.0s");
  EXPECT_EQ(format_duration(420ms), "0.4s");
  EXPECT_EQ(format_duration(3'299ms), "3.2s");
  EXPECT_EQ(format_duration(59'999ms), "59.9s");
  EXPECT_EQ(format_duration(65'000ms), "1m05s");
  EXPECT_EQ(format_duration(3'723'000ms), "1h02m");
  EXPECT_EQ(format_duration(-5ms), "0.0s");
}

TEST(JobDuration, UntilFinishedOrNow) {
  EXPECT_EQ(job_duration(row("a", JobState::kSuccess, 1s, 3s), 10s), Millis(2s));
  EXPECT_EQ(job_duration(row("a", JobState::kRunning, 1s), 10s), Millis(9s));
  EXPECT_EQ(job_duration(row("a", JobState::kQueued), 10s), std::nullopt);
}

TEST(RunResult, FailureCancelledSuccess) {
  RunView v = diamond();
  EXPECT_EQ(run_result(v), JobState::kFailure);
  v.cancelled = true;
  EXPECT_EQ(run_result(v), JobState::kCancelled);
  RunView ok;
  ok.jobs.push_back(row("a", JobState::kSuccess, 0ms, 1ms));
  ok.jobs.push_back(row("b", JobState::kSkipped));
  EXPECT_EQ(run_result(ok), JobState::kSuccess);
  ok.jobs.push_back(row("c", JobState::kCancelled, 0ms, 1ms));  // fail-fast
  EXPECT_EQ(run_result(ok), JobState::kFailure);
}

TEST(AppendTail, KeepsTheLastLines) {
  JobRow r;
  for (int i = 0; i < 10; ++i) append_tail(r, "line " + std::to_string(i), 3);
  EXPECT_EQ(r.tail, (std::deque<std::string>{"line 7", "line 8", "line 9"}));
}

TEST(Sanitize, RemovesEscapesAndControls) {
  EXPECT_EQ(sanitize_for_terminal("\x1b[1;31merror:\x1b[0m bad"), "error: bad");
  EXPECT_EQ(sanitize_for_terminal("\x1b]0;title\x07text"), "text");
  EXPECT_EQ(sanitize_for_terminal("\x1b]8;;http://x\x1b\\link"), "link");
  EXPECT_EQ(sanitize_for_terminal(" 10%\r 50%\r100%"), "100%");
  EXPECT_EQ(sanitize_for_terminal("done\r"), "done");
  EXPECT_EQ(sanitize_for_terminal("a\tb\x07\x08"
                                  "c\x7f"),
            "a bc");
  EXPECT_EQ(sanitize_for_terminal("héllo"), "héllo");
}

TEST(PlainMode, PrefixesLinesWithTheJob) {
  EXPECT_EQ(plain_line("build (-O2)", "cc -O2 -c hello.c"), "[build (-O2)] cc -O2 -c hello.c");
  EXPECT_EQ(plain_line("lint", "ok\r\n"), "[lint] ok");
  EXPECT_EQ(plain_line("lint", ""), "[lint] ");
}

TEST(PlainMode, Events) {
  RunView v = diamond();
  EXPECT_EQ(plain_event(v.jobs[0], 5s), "[version] success (0.4s)");
  EXPECT_EQ(plain_event(v.jobs[2], 5s), "[build (-O0)] failure (2.8s)");
  EXPECT_EQ(plain_event(v.jobs[3], 5s), "[build (-O2)] started");
  EXPECT_EQ(plain_event(v.jobs[4], 5s), "[test (-O0)] skipped");
  EXPECT_EQ(plain_event(v.jobs[5], 5s), "[report] queued");
  EXPECT_EQ(plain_event(row("x", JobState::kCancelled, 1s, 2s), 5s), "[x] cancelled (1.0s)");
}

TEST(Summary, ExactTable) {
  RunView v = diamond();
  v.jobs[3].state = JobState::kSuccess;
  v.jobs[3].finished = 4'000ms;
  v.jobs[5].state = JobState::kSuccess;
  v.jobs[5].started = 4'100ms;
  v.jobs[5].finished = 4'300ms;
  EXPECT_EQ(render_summary(v, 4'380ms),
            "Job          Result     Duration\n"
            "-----------  ---------  --------\n"
            "version      success        0.4s\n"
            "lint         success        1.4s\n"
            "build (-O0)  failure        2.8s\n"
            "build (-O2)  success        3.5s\n"
            "test (-O0)   skipped           -\n"
            "report       success        0.2s\n"
            "-----------  ---------  --------\n"
            "Total        failure        4.3s\n"
            "6 jobs: 4 succeeded, 1 failed, 1 skipped\n");
}

TEST(Summary, CancelledRunAndShortNames) {
  RunView v;
  v.jobs.push_back(row("a", JobState::kSuccess, 0ms, 61'000ms));
  v.jobs.push_back(row("b", JobState::kCancelled, 0ms, 90'000ms));
  v.cancelled = true;
  EXPECT_EQ(render_summary(v, 90'500ms),
            "Job    Result     Duration\n"
            "-----  ---------  --------\n"
            "a      success       1m01s\n"
            "b      cancelled     1m30s\n"
            "-----  ---------  --------\n"
            "Total  cancelled     1m30s\n"
            "2 jobs: 1 succeeded, 1 cancelled\n");
}

TEST(Summary, SingleSuccessfulJob) {
  RunView v;
  v.jobs.push_back(row("only", JobState::kSuccess, 0ms, 1'000ms));
  EXPECT_EQ(render_summary(v, 1'000ms),
            "Job    Result     Duration\n"
            "-----  ---------  --------\n"
            "only   success        1.0s\n"
            "-----  ---------  --------\n"
            "Total  success        1.0s\n"
            "1 job: 1 succeeded\n");
}

TEST(LiveFrame, ShowsEveryJobWithStateAndDuration) {
  RunView v = diamond();
  append_tail(v.jobs[3], "cc -O2 -c src/greet.c", 5);
  append_tail(v.jobs[3], "\x1b[32mar rcs build/libgreet.a\x1b[0m", 5);
  auto f = render_live_frame(v, 5'000ms, {100, 30}, 0);
  auto lines = frame_lines(f.text);
  ASSERT_EQ(f.lines, 9);  // header, 6 jobs, 2 log lines
  EXPECT_EQ(static_cast<int>(lines.size()), f.lines);
  EXPECT_EQ(sanitize_for_terminal(lines[0]),
            "sandci run  5.0s  4/6 jobs done, 1 running, 1 failed");
  EXPECT_EQ(sanitize_for_terminal(lines[1]), "+ version      success      0.4s");
  EXPECT_EQ(sanitize_for_terminal(lines[3]), "x build (-O0)  failure      2.8s");
  EXPECT_EQ(sanitize_for_terminal(lines[4]), "> build (-O2)  running      4.5s");
  EXPECT_EQ(sanitize_for_terminal(lines[5]), "- test (-O0)   skipped         -");
  EXPECT_EQ(sanitize_for_terminal(lines[6]), ". report       queued          -");
  EXPECT_EQ(sanitize_for_terminal(lines[7]), "[build (-O2)] cc -O2 -c src/greet.c");
  // The job's own colours are stripped; ours are added around the state only.
  EXPECT_EQ(sanitize_for_terminal(lines[8]), "[build (-O2)] ar rcs build/libgreet.a");
  EXPECT_EQ(lines[8].find("\x1b[32m"), std::string::npos);
  EXPECT_NE(lines[3].find("\x1b[31mfailure"), std::string::npos);
  // No cursor movement on the first frame; everything below is cleared.
  EXPECT_TRUE(f.text.starts_with("\x1b[2K"));
  EXPECT_TRUE(f.text.ends_with("\x1b[J"));
}

TEST(LiveFrame, RedrawsOverThePreviousFrame) {
  auto f = render_live_frame(diamond(), 1s, {80, 24}, 7);
  EXPECT_TRUE(f.text.starts_with("\x1b[7F\x1b[2K")) << f.text;
}

TEST(LiveFrame, RespectsTheWidth) {
  RunView v = diamond();
  v.jobs[3].name =
      "build (a very long matrix name: os=debian-12, cflags=-O2 -g -fsanitize=address)";
  append_tail(v.jobs[3], std::string(300, 'x'), 5);
  append_tail(v.jobs[3], "unicode ✓ ünïcödé " + std::string(100, 'y'), 5);
  for (int width : {10, 20, 40, 60, 80, 200}) {
    auto f = render_live_frame(v, 5s, {width, 24}, 0);
    for (const auto& line : frame_lines(f.text)) {
      EXPECT_LE(visible_columns(line), static_cast<std::size_t>(width)) << width << ": " << line;
    }
  }
  // At 60 columns the long name is cut with an ellipsis, the state still shown.
  auto f = render_live_frame(v, 5s, {60, 24}, 0);
  EXPECT_NE(f.text.find("build (a very long matrix name: os=deb…  \x1b[33mrunning"),
            std::string::npos)
      << f.text;
}

TEST(LiveFrame, NeverTallerThanTheTerminal) {
  RunView v;
  for (int i = 0; i < 40; ++i) {
    auto state = i == 25 ? JobState::kRunning : i == 30 ? JobState::kFailure : JobState::kQueued;
    v.jobs.push_back(row("job-" + std::to_string(i), state,
                         state == JobState::kQueued ? std::nullopt : std::optional<Millis>(1s)));
    if (state == JobState::kRunning)
      for (int k = 0; k < 10; ++k) append_tail(v.jobs.back(), "log " + std::to_string(k), 10);
  }
  auto f = render_live_frame(v, 2s, {80, 12}, 0);
  EXPECT_EQ(f.lines, 11);
  auto lines = frame_lines(f.text);
  std::string all;
  for (const auto& l : lines) all += sanitize_for_terminal(l) + "\n";
  // The running and failed jobs are among the rows shown; the rest are counted.
  EXPECT_NE(all.find("job-25  running"), std::string::npos) << all;
  EXPECT_NE(all.find("job-30  failure"), std::string::npos) << all;
  EXPECT_NE(all.find("… and 31 more jobs"), std::string::npos) << all;

  // Tiny terminals still get a frame that fits.
  for (int h : {1, 2, 3}) EXPECT_LE(render_live_frame(v, 2s, {80, h}, 0).lines, std::max(h - 1, 1));
}

TEST(LiveFrame, ShareTailLinesAmongRunningJobs) {
  RunView v;
  for (const char* name : {"a", "b"}) {
    v.jobs.push_back(row(name, JobState::kRunning, 0ms));
    for (int k = 0; k < 10; ++k) append_tail(v.jobs.back(), "l" + std::to_string(k), 10);
  }
  // 7 lines of room: header + 2 rows leave 4, two for each job (their latest ones).
  auto f = render_live_frame(v, 1s, {80, 8}, 0);
  auto lines = frame_lines(f.text);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(sanitize_for_terminal(lines[3]), "[a] l8");
  EXPECT_EQ(sanitize_for_terminal(lines[4]), "[a] l9");
  EXPECT_EQ(sanitize_for_terminal(lines[5]), "[b] l8");
  EXPECT_EQ(sanitize_for_terminal(lines[6]), "[b] l9");
  // With room to spare, each shows at most tail_lines.
  EXPECT_EQ(render_live_frame(v, 1s, {80, 50}, 0, 3).lines, 3 + 6);
}

}  // namespace
}  // namespace sandci::agent
