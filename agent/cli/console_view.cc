#include "agent/cli/console_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace sandci::agent {
namespace {

JobState state_of(scheduler::Result result) {
  switch (result) {
    case scheduler::Result::success: return JobState::kSuccess;
    case scheduler::Result::failure: return JobState::kFailure;
    case scheduler::Result::cancelled: return JobState::kCancelled;
    case scheduler::Result::skipped: return JobState::kSkipped;
  }
  return JobState::kFailure;
}

constexpr std::size_t kTailLines = 5;

}  // namespace

TerminalSize terminal_size(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
    return {static_cast<int>(ws.ws_col), static_cast<int>(ws.ws_row)};
  return {};
}

ConsoleView::ConsoleView(const scheduler::Plan& plan, bool live, std::FILE* out)
    : live_(live), out_(out), start_(std::chrono::steady_clock::now()) {
  for (const auto& job : plan.jobs()) {
    JobRow row;
    row.name = job.name;
    row_of_.push_back(view_.jobs.size());
    view_.jobs.push_back(std::move(row));
  }
  if (live_) redraw_ = std::thread([this] { redraw_loop(); });
}

ConsoleView::~ConsoleView() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (redraw_.joinable()) redraw_.join();
}

Millis ConsoleView::now() const {
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start_);
}

void ConsoleView::on_event(const scheduler::RunEvent& event) {
  std::lock_guard lock(mutex_);
  if (event.kind == scheduler::EventKind::job_added) {
    add_row_locked(event);
    return;
  }
  if (event.job >= row_of_.size()) return;  // run events: the summary covers them
  JobRow& row = view_.jobs[row_of_[event.job]];
  const Millis t = now();
  switch (event.kind) {
    case scheduler::EventKind::job_started:
      row.state = JobState::kRunning;
      row.started = t;
      if (!live_) print_locked(plain_event(row, t));
      break;
    case scheduler::EventKind::job_finished:
      row.state = state_of(event.result.value_or(scheduler::Result::failure));
      row.finished = t;
      if (!row.started && row.state != JobState::kSkipped) row.started = t;
      if (!live_) {
        std::string line = plain_event(row, t);
        if (!event.message.empty() && row.state != JobState::kSuccess) line += ": " + event.message;
        print_locked(line);
      }
      break;
    case scheduler::EventKind::log_line:
      append_tail(row, event.message, kTailLines);
      if (!live_) print_locked(plain_line(row.name, sanitize_for_terminal(event.message)));
      break;
    default:
      break;
  }
}

void ConsoleView::add_row_locked(const scheduler::RunEvent& event) {
  if (event.job != row_of_.size()) return;  // the executor adds jobs in index order, once each
  // Grown instances go below their placeholder and the instances added before them.
  std::size_t at = view_.jobs.size();
  if (event.parent < row_of_.size()) at = row_of_[event.parent] + 1 + children_[event.parent]++;
  for (std::size_t& row : row_of_)
    if (row >= at) ++row;
  row_of_.push_back(at);
  JobRow row;
  row.name = event.name;
  view_.jobs.insert(view_.jobs.begin() + static_cast<std::ptrdiff_t>(at), std::move(row));
  if (!live_) print_locked(plain_line(event.name, "queued"));
}

void ConsoleView::print_locked(const std::string& line) {
  // One write per line: another workflow's view may print at the same time.
  std::fputs((line + "\n").c_str(), out_);
  std::fflush(out_);
}

void ConsoleView::draw_locked() {
  auto frame = render_live_frame(view_, now(), terminal_size(fileno(out_)), previous_lines_, kTailLines);
  std::fputs(frame.text.c_str(), out_);
  std::fflush(out_);
  previous_lines_ = frame.lines;
}

void ConsoleView::redraw_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    draw_locked();
    stop_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
  }
}

void ConsoleView::finish(bool cancelled) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (redraw_.joinable()) redraw_.join();
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  view_.cancelled = cancelled;
  if (live_) draw_locked();
  std::fputs(("\n" + render_summary(view_, now())).c_str(), out_);
  std::fflush(out_);
}

}  // namespace sandci::agent
