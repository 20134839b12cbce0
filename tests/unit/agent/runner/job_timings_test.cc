#include "agent/runner/job_timings.h"

#include <gtest/gtest.h>

#include <thread>

namespace sandci::agent {
namespace {

using std::chrono::milliseconds;

TEST(JobTimingsTest, StepsTotalAddsTheSteps) {
  JobTimings t;
  t.steps = {{"a", milliseconds(120)}, {"b", milliseconds(30)}};
  EXPECT_EQ(t.steps_total(), milliseconds(150));
  EXPECT_EQ(JobTimings{}.steps_total(), milliseconds(0));
}

TEST(JobTimingsTest, TableHasARowPerJobWithEveryPhaseAndALinePerStep) {
  JobTimings t;
  t.job = "build (linux)";
  t.total = milliseconds(1234);
  t[JobPhase::kSandboxStart] = milliseconds(180);
  t[JobPhase::kTeardown] = milliseconds(6);
  t.steps = {{"Run make", milliseconds(900)}};
  const std::string table = render_timings({t});
  for (const char* header : {"total", "prepare", "slot", "image", "bundle", "start", "runner-files", "steps",
                             "file-cmds", "artifacts", "teardown"})
    EXPECT_NE(table.find(header), std::string::npos) << header << "\n" << table;
  EXPECT_NE(table.find("build (linux)"), std::string::npos) << table;
  EXPECT_NE(table.find("1.234"), std::string::npos) << table;
  EXPECT_NE(table.find("0.180"), std::string::npos) << table;
  EXPECT_NE(table.find("0.006"), std::string::npos) << table;
  EXPECT_NE(table.find("step 1 0.900  Run make"), std::string::npos) << table;
  // Phase columns line up under their headers: the job row is as wide as the header row.
  const auto header_end = table.find('\n', table.find('\n') + 1);
  const auto row_end = table.find('\n', header_end + 1);
  const auto header_line = table.substr(table.find('\n') + 1, header_end - table.find('\n') - 1);
  const auto row_line = table.substr(header_end + 1, row_end - header_end - 1);
  EXPECT_EQ(header_line.size(), row_line.size()) << table;
}

TEST(JobTimingsTest, LogKeepsJobsFromSeveralThreadsInFinishingOrder) {
  JobTimingsLog log;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&log, i] {
      JobTimings t;
      t.index = static_cast<std::size_t>(i);
      t.job = "job" + std::to_string(i);
      log.add(std::move(t));
    });
  for (auto& thread : threads) thread.join();
  auto jobs = log.jobs();
  ASSERT_EQ(jobs.size(), 8u);
  std::vector<bool> seen(8);
  for (const auto& job : jobs) seen.at(job.index) = true;
  for (bool s : seen) EXPECT_TRUE(s);
}

TEST(JobTimingsTest, PhaseNamesAreTheTableHeaders) {
  EXPECT_STREQ(to_string(JobPhase::kPrepare), "prepare");
  EXPECT_STREQ(to_string(JobPhase::kSandboxStart), "start");
  EXPECT_STREQ(to_string(JobPhase::kFileCommands), "file-cmds");
  EXPECT_STREQ(to_string(JobPhase::kTeardown), "teardown");
}

}  // namespace
}  // namespace sandci::agent
