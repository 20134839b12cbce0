#pragma once
// What `sandci run` prints while a workflow runs: a RunObserver that keeps a
// RunView up to date and either prints plain `[job] line` lines as they come, or
// redraws a live frame on a terminal a few times a second. finish() prints the
// summary table in both modes. Jobs the run adds (a matrix computed from needed
// jobs' outputs) get rows below the placeholder they grew from.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <map>
#include <thread>
#include <vector>

#include "agent/cli/run_view.h"
#include "scheduler/events.h"
#include "scheduler/plan.h"

namespace sandci::agent {

class ConsoleView final : public scheduler::RunObserver {
 public:
  // `live`: redraw a frame in place (a terminal); else plain lines.
  ConsoleView(const scheduler::Plan& plan, bool live, std::FILE* out);
  ~ConsoleView() override;

  void on_event(const scheduler::RunEvent& event) override;
  // Stops redrawing, draws the last frame, prints the summary table.
  void finish(bool cancelled);

 private:
  Millis now() const;
  void redraw_loop();
  void draw_locked();
  void print_locked(const std::string& line);
  void add_row_locked(const scheduler::RunEvent& event);

  bool live_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool finished_ = false;
  RunView view_;
  std::vector<std::size_t> row_of_;  // job index -> its row in view_.jobs
  std::map<std::size_t, std::size_t> children_;  // placeholder -> rows added below it
  int previous_lines_ = 0;
  std::thread redraw_;
};

// The terminal's size, or 80x24 when it cannot be read.
TerminalSize terminal_size(int fd);

}  // namespace sandci::agent
