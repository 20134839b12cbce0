#pragma once
// Where one job's wall time went, phase by phase (`sandci run --timings`). The
// job runner fills a JobTimings per job and hands it to a JobTimingsLog; the
// caller prints the table once the run is over. Measuring is cheap (a clock
// read per phase), so it is always on; only printing is optional.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace sandci::agent {

// The phases of a job in the order they happen. Steps are kept apart (below).
enum class JobPhase {
  kPrepare,       // log file, env context, the runner's host files
  kSlot,          // waiting for a free job slot
  kImage,         // image lookup and its user
  kBundle,        // the sandbox's OCI bundle
  kSandboxStart,  // `runsc run` until the sandbox's init is ready
  kRunnerFiles,   // the runner's own files inside the sandbox (script, event)
  kFileCommands,  // reading $GITHUB_OUTPUT & co. back after the steps
  kArtifacts,     // upload-artifact / download-artifact copies
  kTeardown,      // destroying the sandbox, after the job's end was reported (not in total)
  kCount,
};

// "prepare", "slot", "image", "bundle", "start", "runner-files", "file-cmds",
// "artifacts", "teardown".
const char* to_string(JobPhase phase);

struct StepTiming {
  std::string name;
  std::chrono::nanoseconds duration{0};  // the step itself, without the phases above
};

struct JobTimings {
  std::size_t index = 0;  // the job's index in its plan
  std::string job;        // its display name
  std::chrono::nanoseconds total{0};  // until the job's end was reported
  std::chrono::nanoseconds phases[static_cast<std::size_t>(JobPhase::kCount)]{};
  std::vector<StepTiming> steps;

  std::chrono::nanoseconds& operator[](JobPhase phase) { return phases[static_cast<std::size_t>(phase)]; }
  std::chrono::nanoseconds operator[](JobPhase phase) const { return phases[static_cast<std::size_t>(phase)]; }
  // Sum of the step durations.
  std::chrono::nanoseconds steps_total() const;
};

// Collects the timings of finished jobs; thread-safe (job threads add).
class JobTimingsLog {
 public:
  void add(JobTimings timings);
  // Every job added so far, in the order they finished.
  std::vector<JobTimings> jobs() const;

 private:
  mutable std::mutex mutex_;
  std::vector<JobTimings> jobs_;
};

// A table for people: one row per job (seconds, 3 decimals) with a column per
// phase and one for the steps, then one indented line per step.
std::string render_timings(const std::vector<JobTimings>& jobs);

}  // namespace sandci::agent
