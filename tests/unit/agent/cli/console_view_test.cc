// The console view of `sandci run` in plain mode, fed events by hand: jobs a
// grown matrix adds get rows below their placeholder, in the summary too.
#include "agent/cli/console_view.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "scheduler/workflow_loader.h"

namespace sandci::agent {
namespace {

using scheduler::EventKind;
using scheduler::Result;
using scheduler::RunEvent;

class ConsoleViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scheduler::Diagnostics diagnostics;
    auto workflow = scheduler::parse_workflow(R"(on: push
jobs:
  setup: {steps: [{run: x}]}
  test:
    needs: setup
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    steps: [{run: x}]
  report:
    needs: test
    steps: [{run: x}]
)",
                                              "ci.yml", diagnostics);
    ASSERT_TRUE(workflow);
    workflow_ = std::make_unique<scheduler::Workflow>(std::move(*workflow));
    auto plan = scheduler::Plan::build(*workflow_);
    ASSERT_TRUE(plan);
    plan_ = std::make_unique<scheduler::Plan>(std::move(*plan));
    out_ = open_memstream(&buffer_, &size_);
    ASSERT_NE(out_, nullptr);
  }
  void TearDown() override {
    if (out_) std::fclose(out_);
    std::free(buffer_);
  }
  std::string output() {
    std::fflush(out_);
    return std::string(buffer_, size_);
  }
  static RunEvent event(EventKind kind, std::size_t job, std::string name, std::optional<Result> result = {}) {
    RunEvent e;
    e.kind = kind;
    e.job = job;
    e.name = std::move(name);
    e.result = result;
    return e;
  }
  static RunEvent added(std::size_t job, std::string name, std::size_t parent) {
    RunEvent e = event(EventKind::job_added, job, std::move(name));
    e.parent = parent;
    return e;
  }

  std::unique_ptr<scheduler::Workflow> workflow_;
  std::unique_ptr<scheduler::Plan> plan_;
  char* buffer_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* out_ = nullptr;
};

TEST_F(ConsoleViewTest, AddedJobsGetRowsBelowTheirPlaceholder) {
  ConsoleView view(*plan_, /*live=*/false, out_);
  view.on_event(event(EventKind::job_started, 0, "setup"));
  view.on_event(event(EventKind::job_finished, 0, "setup", Result::success));
  view.on_event(event(EventKind::job_started, 1, "test (matrix)"));
  view.on_event(added(3, "test (a)", 1));
  view.on_event(added(4, "test (b)", 1));
  view.on_event(event(EventKind::job_started, 4, "test (b)"));
  view.on_event(event(EventKind::log_line, 4, "test (b)"));
  view.on_event(event(EventKind::job_finished, 4, "test (b)", Result::failure));
  view.on_event(event(EventKind::job_finished, 3, "test (a)", Result::success));
  view.on_event(event(EventKind::job_finished, 1, "test (matrix)", Result::failure));
  view.on_event(event(EventKind::job_finished, 2, "report", Result::skipped));
  view.finish(false);
  const std::string out = output();
  EXPECT_NE(out.find("[test (a)] queued\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[test (b)] failure"), std::string::npos) << out;
  // The summary: the placeholder, its instances in matrix order, then the job after it.
  const std::size_t summary = out.rfind("setup");
  ASSERT_NE(summary, std::string::npos) << out;
  const std::size_t matrix = out.find("test (matrix)", summary), a = out.find("test (a)", summary),
                    b = out.find("test (b)", summary), report = out.find("report", summary);
  ASSERT_NE(report, std::string::npos) << out;
  EXPECT_LT(matrix, a) << out;
  EXPECT_LT(a, b) << out;
  EXPECT_LT(b, report) << out;
  // a's row holds a's result (the rows behind it moved, the mapping followed).
  const std::string a_line = out.substr(a, out.find('\n', a) - a);
  EXPECT_NE(a_line.find("success"), std::string::npos) << a_line;
  const std::string b_line = out.substr(b, out.find('\n', b) - b);
  EXPECT_NE(b_line.find("failure"), std::string::npos) << b_line;
  const std::string report_line = out.substr(report, out.find('\n', report) - report);
  EXPECT_NE(report_line.find("skipped"), std::string::npos) << report_line;
}

}  // namespace
}  // namespace sandci::agent
