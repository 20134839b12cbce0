#include "scheduler/value_expression.h"

#include <cmath>

#include "scheduler/expression_value.h"

namespace sandci::scheduler {

std::expected<Value, ExpressionError> evaluate_value(std::string_view text, const EvalContext& ctx) {
  const std::size_t open = text.find("${{");
  const std::size_t close = text.rfind("}}");
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 3)
    return std::unexpected(ExpressionError{0, "expected one ${{ }} expression"});
  const std::size_t start = open + 3;
  auto parsed = parse_expression(text.substr(start, close - start));
  if (!parsed) {
    parsed.error().offset += start;
    return std::unexpected(parsed.error());
  }
  auto value = (*parsed)->evaluate(ctx);
  if (!value) {
    value.error().offset += start;
    return std::unexpected(value.error());
  }
  return *value;
}

std::expected<StringMap, std::string> evaluate_env(std::string_view text, const EvalContext& ctx) {
  auto value = evaluate_value(text, ctx);
  if (!value) return std::unexpected(value.error().message);
  if (value->is_null()) return StringMap{};
  if (!value->is_object())
    return std::unexpected("'env: " + std::string(text) + "' must give a mapping of names to values, not " +
                           to_display_string(*value));
  StringMap env;
  for (const auto& [key, item] : value->items()) env.emplace_back(key, to_display_string(item));
  return env;
}

std::expected<double, std::string> evaluate_minutes(std::string_view text, const EvalContext& ctx) {
  auto value = evaluate_value(text, ctx);
  if (!value) return std::unexpected(value.error().message);
  const double minutes = expr::to_number(*value);
  if (!(minutes > 0) || !std::isfinite(minutes))
    return std::unexpected("'timeout-minutes: " + std::string(text) + "' must give a positive number, not '" +
                           to_display_string(*value) + "'");
  return minutes;
}

}  // namespace sandci::scheduler
