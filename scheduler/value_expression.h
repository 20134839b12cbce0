#pragma once
// Values GitHub lets a single expression stand for (`env: ${{ matrix.env }}`,
// `strategy.matrix: ${{ fromJSON(...) }}`, `timeout-minutes: ${{ ... }}`):
// evaluated to a JSON value rather than to a string.
#include <expected>
#include <string>
#include <string_view>

#include "scheduler/expression.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

// Evaluates `text`, one `${{ expr }}` (white space around it allowed), to its
// value. Errors carry the message and the offset inside `text`.
std::expected<Value, ExpressionError> evaluate_value(std::string_view text, const EvalContext& ctx);

// Evaluates an `env: ${{ ... }}` expression: it must give an object; its values
// become strings as interpolation shows them (numbers without ".0", objects as JSON).
std::expected<StringMap, std::string> evaluate_env(std::string_view text, const EvalContext& ctx);

// Evaluates `timeout-minutes: ${{ ... }}`: a positive number (or a string holding one).
std::expected<double, std::string> evaluate_minutes(std::string_view text, const EvalContext& ctx);

}  // namespace sandci::scheduler
