// Fuzz target: GitHub Actions expressions (scheduler/expression.h), as the loader
// checks them and as a run evaluates them: parse_expression then evaluate against
// contexts like a push's, evaluate_condition and check_condition on the same text
// read as an `if:`, interpolate and check_interpolation on it read as a string with
// `${{ }}` in it.
//
// Input: the expression text, as written in a workflow.
// Beyond "no crash, no exception": every error points inside the text it was given,
// and what check_condition accepts, evaluate_condition parses too (validation and
// runs agree).
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "scheduler/expression.h"

namespace {

using namespace sandci::scheduler;

const EvalContext& sample_context() {
  static const EvalContext context = [] {
    EvalContext ctx;
    ctx.contexts = Value::parse(R"({
      "github": {"event_name": "push", "ref": "refs/heads/main", "sha": "3f786850e387550fdab836ed7e6dc881de23001b",
                 "repository": "alice/hello", "run_number": 7, "actor": "alice",
                 "event": {"head_commit": {"message": "fix: the build\n\nlong body"},
                           "commits": [{"id": "a1", "message": "one"}, {"id": "b2", "message": "two"}],
                           "pull_request": null, "labels": ["bug", "ci"]}},
      "env": {"CC": "gcc", "EMPTY": "", "ZERO": "0"},
      "vars": {"DEPLOY": "true"},
      "matrix": {"os": "linux", "compiler": "clang", "version": 17, "ratio": 0.25,
                 "include": [{"os": "linux", "arch": "arm64"}]},
      "needs": {"build": {"result": "success", "outputs": {"artifact": "app.tar.gz", "json": "{\"a\":[1,2]}"}}},
      "steps": {"version": {"outputs": {"tag": "v1.2.3"}, "outcome": "success", "conclusion": "success"}},
      "secrets": {"TOKEN": "not-a-real-token"},
      "inputs": {"debug": false, "level": "3"},
      "job": {"status": "success"},
      "runner": {"os": "Linux", "arch": "X64", "temp": "/tmp"},
      "strategy": {"fail-fast": true, "job-index": 0, "job-total": 2}
    })");
    ctx.status = StatusFunctions{true, false};
    ctx.hash_files = [](const std::vector<std::string>& patterns) -> std::expected<std::string, std::string> {
      if (patterns.empty()) return std::unexpected(std::string("no pattern"));
      return std::string(64, '0');
    };
    return ctx;
  }();
  return context;
}

void check_offset(const ExpressionError& error, std::string_view text) {
  FUZZ_CHECK(error.offset <= text.size(), "an error offset points inside the expression");
  FUZZ_CHECK(!error.message.empty(), "an error says why");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const EvalContext& ctx = sample_context();

  auto expression = parse_expression(text);
  if (expression) {
    auto value = (*expression)->evaluate(ctx);
    if (value) {
      (void)is_truthy(*value);
      (void)to_display_string(*value);
    } else {
      FUZZ_CHECK(!value.error().message.empty(), "an evaluation error says why");
    }
    for (const auto& name : (*expression)->names())
      FUZZ_CHECK(name.offset <= text.size(), "a name's offset points inside the expression");
    (void)(*expression)->uses_status_function();
  } else {
    check_offset(expression.error(), text);
  }

  const auto checked = check_condition(text);
  if (checked) check_offset(*checked, text);
  auto condition = evaluate_condition(text, ctx);
  if (!checked && !condition) {
    // Validation accepted it: a run may fail only while evaluating, never parsing.
    FUZZ_CHECK(condition.error().offset <= text.size(), "a condition error points inside it");
  }
  for (const auto& name : condition_names(text))
    FUZZ_CHECK(name.offset <= text.size(), "a condition name points inside it");

  // The same text as a string value with expressions in it, the way `run:` reads it.
  const std::string wrapped = "echo ${{ " + std::string(text) + " }} and " + std::string(text);
  for (const auto& error : check_interpolation(wrapped)) check_offset(error, wrapped);
  for (const auto& name : interpolation_names(wrapped))
    FUZZ_CHECK(name.offset <= wrapped.size(), "an interpolation name points inside the text");
  auto interpolated = interpolate(wrapped, ctx);
  if (!interpolated) check_offset(interpolated.error(), wrapped);
  return 0;
}
