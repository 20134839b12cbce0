#include "agent/runner/job_timings.h"

#include <algorithm>
#include <cstdio>

namespace sandci::agent {

namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

std::string cell(double value, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%*.3f", width, value);
  return buf;
}

std::string padded(const std::string& text, std::size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

}  // namespace

const char* to_string(JobPhase phase) {
  switch (phase) {
    case JobPhase::kPrepare: return "prepare";
    case JobPhase::kSlot: return "slot";
    case JobPhase::kImage: return "image";
    case JobPhase::kBundle: return "bundle";
    case JobPhase::kSandboxStart: return "start";
    case JobPhase::kRunnerFiles: return "runner-files";
    case JobPhase::kFileCommands: return "file-cmds";
    case JobPhase::kArtifacts: return "artifacts";
    case JobPhase::kTeardown: return "teardown";
    case JobPhase::kCount: break;
  }
  return "?";
}

std::chrono::nanoseconds JobTimings::steps_total() const {
  std::chrono::nanoseconds sum{0};
  for (const auto& step : steps) sum += step.duration;
  return sum;
}

void JobTimingsLog::add(JobTimings timings) {
  std::lock_guard lock(mutex_);
  jobs_.push_back(std::move(timings));
}

std::vector<JobTimings> JobTimingsLog::jobs() const {
  std::lock_guard lock(mutex_);
  return jobs_;
}

std::string render_timings(const std::vector<JobTimings>& jobs) {
  std::size_t name_width = 3;
  for (const auto& job : jobs) name_width = std::max(name_width, job.job.size());
  name_width = std::min<std::size_t>(name_width, 40);

  // The step columns sit after the runner's files, where they happen.
  std::vector<std::string> headers{"total"};
  for (auto phase : {JobPhase::kPrepare, JobPhase::kSlot, JobPhase::kImage, JobPhase::kBundle,
                     JobPhase::kSandboxStart, JobPhase::kRunnerFiles})
    headers.push_back(to_string(phase));
  headers.push_back("steps");
  for (auto phase : {JobPhase::kFileCommands, JobPhase::kArtifacts, JobPhase::kTeardown})
    headers.push_back(to_string(phase));

  std::string out = "timings (seconds)\n" + padded("job", name_width);
  for (const auto& h : headers) out += "  " + std::string(h.size() < 6 ? 6 - h.size() : 0, ' ') + h;
  out += "\n";
  for (const auto& job : jobs) {
    std::vector<double> values{seconds(job.total)};
    for (auto phase : {JobPhase::kPrepare, JobPhase::kSlot, JobPhase::kImage, JobPhase::kBundle,
                       JobPhase::kSandboxStart, JobPhase::kRunnerFiles})
      values.push_back(seconds(job[phase]));
    values.push_back(seconds(job.steps_total()));
    for (auto phase : {JobPhase::kFileCommands, JobPhase::kArtifacts, JobPhase::kTeardown})
      values.push_back(seconds(job[phase]));
    out += padded(job.job.substr(0, name_width), name_width);
    for (std::size_t i = 0; i < values.size(); ++i)
      out += "  " + cell(values[i], static_cast<int>(std::max<std::size_t>(headers[i].size(), 6)));
    out += "\n";
    for (std::size_t i = 0; i < job.steps.size(); ++i)
      out += "  step " + std::to_string(i + 1) + " " + cell(seconds(job.steps[i].duration), 0) + "  " +
             job.steps[i].name + "\n";
  }
  return out;
}

}  // namespace sandci::agent
