// Fuzz target: a workflow file, through what `sandci validate` and a run do with it
// (scheduler/workflow_loader.h): parse_workflow (YAML, keys, expressions, triggers,
// matrices, steps), then for a valid workflow the matrices known before the run and
// the plan (matrix expansion, needs, cycle check, order).
//
// Input: the workflow file's bytes.
// Beyond "no crash, no exception": a workflow comes back exactly when there is no
// error; every diagnostic names the file and a line:col inside it (or none), so that
// the message a user gets always points at something real.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "scheduler/matrix.h"
#include "scheduler/plan.h"
#include "scheduler/workflow_loader.h"

namespace {

using namespace sandci::scheduler;

constexpr const char* kFile = ".github/workflows/fuzz.yml";

void check_diagnostics(const Diagnostics& diagnostics, std::string_view text) {
  const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& diagnostic : diagnostics) {
    FUZZ_CHECK(!diagnostic.message.empty(), "a diagnostic says what is wrong");
    FUZZ_CHECK(diagnostic.location.file == kFile, "a diagnostic names the file");
    FUZZ_CHECK(diagnostic.location.line >= 0 && diagnostic.location.line <= lines,
               "a diagnostic's line is inside the file");
    FUZZ_CHECK(diagnostic.location.column >= 0, "a diagnostic's column is not negative");
    FUZZ_CHECK(diagnostic.location.line > 0 || diagnostic.location.column == 0,
               "a column comes with a line");
  }
}

EvalContext planning_context() {
  EvalContext ctx;
  ctx.contexts = Value::parse(R"({
    "github": {"event_name": "push", "ref": "refs/heads/main", "repository": "alice/hello",
               "event": {"ref": "refs/heads/main"}},
    "inputs": {}, "vars": {"OS_LIST": "[\"linux\",\"windows\"]"}, "env": {}})");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Diagnostics diagnostics;
  std::optional<Workflow> workflow = parse_workflow(text, kFile, diagnostics);
  check_diagnostics(diagnostics, text);
  FUZZ_CHECK(workflow.has_value() == (error_count(diagnostics) == 0),
             "a workflow is returned exactly when its file has no error");
  for (const auto& diagnostic : diagnostics) (void)diagnostic.to_string();
  if (!workflow) return 0;

  const Diagnostics matrix_errors = resolve_planned_matrices(*workflow, planning_context());
  for (const auto& diagnostic : matrix_errors) FUZZ_CHECK(!diagnostic.message.empty(), "a matrix error says why");
  auto plan = Plan::build(*workflow);
  if (!plan) {
    for (const auto& diagnostic : plan.error()) FUZZ_CHECK(!diagnostic.message.empty(), "a plan error says why");
    return 0;
  }
  FUZZ_CHECK(plan->order().size() == plan->size(), "the plan orders every job once");
  return 0;
}
