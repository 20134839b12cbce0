#pragma once
// Test doubles for the scheduler: workflows built in C++, a fake clock and a
// scripted JobRunner that simulates time instead of sleeping.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "scheduler/clock.h"
#include "scheduler/job_runner.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler::testing {

inline Job make_job(std::string id, std::vector<std::string> needs = {}) {
  Job job;
  job.id = std::move(id);
  job.needs = std::move(needs);
  job.location = {"ci.yml", 1, 1};
  return job;
}

// A matrix job: dimensions in order, e.g. {{"os", {"linux", "mac"}}, {"node", {18, 20}}}.
inline Job make_matrix_job(std::string id,
                           std::vector<std::pair<std::string, std::vector<nlohmann::json>>> dims,
                           std::vector<std::string> needs = {}) {
  Job job = make_job(std::move(id), std::move(needs));
  job.strategy.emplace();
  job.strategy->matrix.dimensions = std::move(dims);
  return job;
}

inline Workflow make_workflow(std::vector<Job> jobs) {
  Workflow workflow;
  workflow.file = "ci.yml";
  workflow.jobs = std::move(jobs);
  return workflow;
}

class FakeClock final : public Clock {
 public:
  time_point now() const override { return now_; }
  void set(time_point t) { now_ = std::max(now_, t); }
  double seconds() const { return std::chrono::duration<double>(now_ - time_point{}).count(); }

 private:
  time_point now_{};
};

inline Clock::time_point at_seconds(double s) {
  return Clock::time_point{} +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// What a scripted job does: how long it takes and how it ends.
struct Script {
  double seconds = 1;
  Result result = Result::success;
  nlohmann::json outputs = nlohmann::json::object();
  std::string message;
};

// Runs nothing: each started job completes `seconds` later on the fake clock,
// or at once with `cancelled` when told to stop. wait() jumps the clock to the
// next completion, deadline or scheduled action, whichever comes first.
class FakeRunner final : public JobRunner {
 public:
  explicit FakeRunner(FakeClock& clock) : clock_(clock) {}

  // Scripts by concrete job name; unscripted jobs take 1 s and succeed.
  void script(const std::string& name, Script script) { scripts_[name] = std::move(script); }
  // Runs `action` when the clock reaches `seconds` (e.g. executor.cancel()).
  void at(double seconds, std::function<void()> action) {
    actions_.emplace_back(at_seconds(seconds), std::move(action));
  }

  void start(JobRequest request) override {
    const std::string name = request.concrete->name;
    started.push_back(name);
    contexts.emplace(name, request.make_context().contexts);
    jobs.emplace(name, *request.job);
    timeouts.emplace(name, request.timeout);
    Script s = scripts_.count(name) ? scripts_[name] : Script{};
    running_.push_back({request.index, name, request.job->id, clock_.now() + to_duration(s.seconds),
                        false, std::move(s), sequence_++});
    max_running = std::max(max_running, running_.size());
    std::size_t same_job = 0;
    for (const auto& r : running_) same_job += r.job_id == request.job->id;
    auto& peak = max_running_by_job[request.job->id];
    peak = std::max(peak, same_job);
  }

  void stop(std::size_t index) override {
    for (auto& r : running_) {
      if (r.index != index || r.stopped) continue;
      r.stopped = true;
      r.done_at = clock_.now();
      stopped.push_back(r.name);
    }
  }

  std::optional<JobCompletion> wait(std::optional<Clock::time_point> deadline) override {
    auto next = std::min_element(running_.begin(), running_.end(), [](const auto& a, const auto& b) {
      return a.done_at != b.done_at ? a.done_at < b.done_at : a.sequence < b.sequence;
    });
    std::optional<Clock::time_point> when;
    if (next != running_.end()) when = next->done_at;
    if (deadline && (!when || *deadline < *when)) when = deadline;
    auto action = std::min_element(actions_.begin(), actions_.end(),
                                   [](const auto& a, const auto& b) { return a.first < b.first; });
    if (action != actions_.end() && (!when || action->first <= *when)) {
      clock_.set(action->first);
      auto fn = std::move(action->second);
      actions_.erase(action);
      fn();
      return std::nullopt;
    }
    if (!when) {
      ADD_FAILURE() << "executor waits with nothing running, no deadline and no action";
      throw std::runtime_error("deadlock");
    }
    clock_.set(*when);
    if (next == running_.end() || next->done_at > *when) return std::nullopt;  // deadline passed
    JobCompletion completion{next->index, {}};
    if (next->stopped) {
      completion.outcome.result = Result::cancelled;
    } else {
      completion.outcome = {next->script.result, next->script.outputs, next->script.message};
    }
    finished.push_back(next->name);
    running_.erase(next);
    return completion;
  }

  void wake() override { ++wakes; }

  std::vector<std::string> started, stopped, finished;
  std::map<std::string, nlohmann::json> contexts;  // what each job's make_context() gave
  std::map<std::string, Job> jobs;                  // the job each was given (expressions resolved)
  std::map<std::string, Clock::duration> timeouts;
  std::size_t max_running = 0;
  std::map<std::string, std::size_t> max_running_by_job;
  int wakes = 0;

 private:
  struct Running {
    std::size_t index;
    std::string name, job_id;
    Clock::time_point done_at;
    bool stopped;
    Script script;
    std::size_t sequence;
  };
  static Clock::duration to_duration(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  FakeClock& clock_;
  std::map<std::string, Script> scripts_;
  std::vector<Running> running_;
  std::vector<std::pair<Clock::time_point, std::function<void()>>> actions_;
  std::size_t sequence_ = 0;
};

}  // namespace sandci::scheduler::testing
