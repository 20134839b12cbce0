#include "scheduler/events.h"

namespace sandci::scheduler {

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::run_queued: return "run_queued";
    case EventKind::run_started: return "run_started";
    case EventKind::run_finished: return "run_finished";
    case EventKind::job_added: return "job_added";
    case EventKind::job_queued: return "job_queued";
    case EventKind::job_started: return "job_started";
    case EventKind::job_finished: return "job_finished";
    case EventKind::step_queued: return "step_queued";
    case EventKind::step_started: return "step_started";
    case EventKind::step_finished: return "step_finished";
    case EventKind::log_line: return "log_line";
  }
  return "unknown";
}

void EventFanout::subscribe(RunObserver* observer) {
  std::lock_guard lock(mutex_);
  observers_.push_back(observer);
}

void EventFanout::on_event(const RunEvent& event) {
  std::lock_guard lock(mutex_);
  for (auto* observer : observers_) observer->on_event(event);
}

void EventRecorder::on_event(const RunEvent& event) {
  std::lock_guard lock(mutex_);
  events_.push_back(event);
}

std::vector<RunEvent> EventRecorder::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

}  // namespace sandci::scheduler
