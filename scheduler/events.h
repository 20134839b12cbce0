#pragma once
// Everything a run does is published as RunEvents through one observer
// interface, so the CLI, the run store and the status reporter subscribe the
// same way. The executor publishes run and job events; the job runner (and the
// step sequencer it uses) publishes step events and log lines.
#include <cstddef>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/clock.h"
#include "scheduler/result.h"

namespace sandci::scheduler {

enum class EventKind {
  run_queued,
  run_started,
  run_finished,
  job_added,  // a job the plan did not hold (a matrix grown at run time); then job_queued
  job_queued,
  job_started,
  job_finished,
  step_queued,
  step_started,
  step_finished,
  log_line,
};

std::string_view to_string(EventKind kind);

inline constexpr std::size_t kNoIndex = std::numeric_limits<std::size_t>::max();

struct RunEvent {
  EventKind kind = EventKind::log_line;
  Clock::time_point time{};
  std::size_t job = kNoIndex;   // concrete job index in the plan; kNoIndex for run events
  std::size_t step = kNoIndex;  // step index in the job; kNoIndex for run and job events
  std::string name;             // job display name or step name
  std::optional<Result> result;  // for *_finished
  // job_added: the placeholder job the new one grew from (its matrix), whose
  // dependents wait for it too.
  std::size_t parent = kNoIndex;
  std::string message;  // log line text, or why a job/step ended ("timed out after 5 minutes")
};

// Implementations must be thread-safe when the job runner publishes from its
// own threads (the executor itself publishes from the thread calling run()).
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_event(const RunEvent& event) = 0;
};

// Forwards every event to each subscriber, in subscription order, one event at
// a time (a mutex serialises publishers from different threads).
class EventFanout final : public RunObserver {
 public:
  void subscribe(RunObserver* observer);
  void on_event(const RunEvent& event) override;

 private:
  std::mutex mutex_;
  std::vector<RunObserver*> observers_;
};

// Keeps every event; for tests and for `sandci run` summaries.
class EventRecorder final : public RunObserver {
 public:
  void on_event(const RunEvent& event) override;
  std::vector<RunEvent> events() const;

 private:
  mutable std::mutex mutex_;
  std::vector<RunEvent> events_;
};

}  // namespace sandci::scheduler
