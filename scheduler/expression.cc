// `${{ }}` handling around parse_expression: `if:` conditions, interpolation of
// strings and their validation.
#include "scheduler/expression.h"

#include <optional>
#include <utility>

namespace sandci::scheduler {
namespace {

constexpr std::string_view kOpen = "${{";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Position of the `}}` closing an expression whose text starts at `from`, or
// npos. Quoted strings are skipped so format('}}') does not end the expression.
std::size_t find_close(std::string_view text, std::size_t from) {
  bool in_string = false;
  for (std::size_t i = from; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\'') {
        if (i + 1 < text.size() && text[i + 1] == '\'') {
          ++i;  // '' is an escaped quote
        } else {
          in_string = false;
        }
      }
    } else if (c == '\'') {
      in_string = true;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      return i;
    }
  }
  return std::string_view::npos;
}

ExpressionError unterminated(std::size_t offset) {
  return {offset, "unterminated '${{' (no matching '}}')"};
}

ExpressionError shifted(ExpressionError error, std::size_t by) {
  error.offset += by;
  return error;
}

// One `${{ expr }}` found in a text: where it opens and where its inner text is.
struct Embedded {
  std::size_t open;
  std::size_t inner_begin;
  std::size_t inner_end;  // the closing `}}` starts here
};

// Calls `visit(Embedded)` for each expression in text, in order; `visit` returns
// false to stop. Returns the unterminated error if one is found.
template <typename Visit>
std::optional<ExpressionError> for_each_embedded(std::string_view text, Visit visit) {
  std::size_t pos = 0;
  while ((pos = text.find(kOpen, pos)) != std::string_view::npos) {
    std::size_t inner = pos + kOpen.size();
    std::size_t close = find_close(text, inner);
    if (close == std::string_view::npos) return unterminated(pos);
    if (!visit(Embedded{pos, inner, close})) return std::nullopt;
    pos = close + 2;
  }
  return std::nullopt;
}

bool success(const EvalContext& ctx) { return !ctx.status.any_failed && !ctx.status.cancelled; }

}  // namespace

namespace {

// The expression text of a condition: where it starts and ends in `condition`
// once spaces and an optional `${{ }}` wrapper are stripped (empty: success()).
std::expected<std::pair<std::size_t, std::size_t>, ExpressionError> condition_body(
    std::string_view condition) {
  std::size_t begin = 0, end = condition.size();
  while (begin < end && is_space(condition[begin])) ++begin;
  while (end > begin && is_space(condition[end - 1])) --end;
  if (condition.substr(begin, end - begin).starts_with(kOpen)) {
    std::size_t close = find_close(condition, begin + kOpen.size());
    if (close == std::string_view::npos) return std::unexpected(unterminated(begin));
    if (close + 2 != end) {
      // `${{ a }} && b` would be a string in Actions (always true): refuse it.
      return std::unexpected(ExpressionError{
          close + 2, "text after '}}' in a condition; put the whole condition inside one '${{ }}'"});
    }
    begin += kOpen.size();
    end = close;
    while (begin < end && is_space(condition[begin])) ++begin;
    while (end > begin && is_space(condition[end - 1])) --end;
  }
  return std::pair{begin, end};
}

}  // namespace

std::optional<ExpressionError> check_condition(std::string_view condition) {
  auto body = condition_body(condition);
  if (!body) return std::move(body.error());
  auto [begin, end] = *body;
  if (begin == end) return std::nullopt;
  auto expression = parse_expression(condition.substr(begin, end - begin));
  if (!expression) return shifted(std::move(expression.error()), begin);
  return std::nullopt;
}

std::expected<bool, ExpressionError> evaluate_condition(std::string_view condition,
                                                        const EvalContext& ctx) {
  auto body = condition_body(condition);
  if (!body) return std::unexpected(std::move(body.error()));
  auto [begin, end] = *body;
  if (begin == end) return success(ctx);
  auto expression = parse_expression(condition.substr(begin, end - begin));
  if (!expression) return std::unexpected(shifted(std::move(expression.error()), begin));
  // Without a status function the condition means success() && (condition);
  // skip evaluating it when success() is false.
  if (!(*expression)->uses_status_function() && !success(ctx)) return false;
  auto value = (*expression)->evaluate(ctx);
  if (!value) return std::unexpected(shifted(std::move(value.error()), begin));
  return is_truthy(*value);
}

std::expected<std::string, ExpressionError> interpolate(std::string_view text,
                                                        const EvalContext& ctx) {
  std::string out;
  std::size_t copied = 0;
  std::optional<ExpressionError> failure;
  auto unterminated_error = for_each_embedded(text, [&](const Embedded& e) {
    out.append(text.substr(copied, e.open - copied));
    copied = e.inner_end + 2;
    auto expression = parse_expression(text.substr(e.inner_begin, e.inner_end - e.inner_begin));
    if (!expression) {
      failure = shifted(std::move(expression.error()), e.inner_begin);
      return false;
    }
    auto value = (*expression)->evaluate(ctx);
    if (!value) {
      failure = shifted(std::move(value.error()), e.inner_begin);
      return false;
    }
    out += to_display_string(*value);
    if (out.size() > kMaxResultLength) {
      failure = ExpressionError{e.open, "interpolated text longer than " + std::to_string(kMaxResultLength) + " bytes"};
      return false;
    }
    return true;
  });
  if (failure) return std::unexpected(*std::move(failure));
  if (unterminated_error) return std::unexpected(*std::move(unterminated_error));
  out.append(text.substr(copied));
  return out;
}

std::vector<ExpressionName> condition_names(std::string_view condition) {
  auto body = condition_body(condition);
  if (!body || body->first == body->second) return {};
  auto [begin, end] = *body;
  auto expression = parse_expression(condition.substr(begin, end - begin));
  if (!expression) return {};
  std::vector<ExpressionName> names = (*expression)->names();
  for (auto& name : names) name.offset += begin;
  return names;
}

std::vector<ExpressionName> interpolation_names(std::string_view text) {
  std::vector<ExpressionName> names;
  for_each_embedded(text, [&](const Embedded& e) {
    auto expression = parse_expression(text.substr(e.inner_begin, e.inner_end - e.inner_begin));
    if (expression)
      for (ExpressionName name : (*expression)->names()) {
        name.offset += e.inner_begin;
        names.push_back(std::move(name));
      }
    return true;
  });
  return names;
}

std::vector<ExpressionError> check_interpolation(std::string_view text) {
  std::vector<ExpressionError> errors;
  auto unterminated_error = for_each_embedded(text, [&](const Embedded& e) {
    auto expression = parse_expression(text.substr(e.inner_begin, e.inner_end - e.inner_begin));
    if (!expression) errors.push_back(shifted(std::move(expression.error()), e.inner_begin));
    return true;
  });
  if (unterminated_error) errors.push_back(*std::move(unterminated_error));
  return errors;
}

}  // namespace sandci::scheduler
