#pragma once
// GitHub Actions expressions: `${{ ... }}`. Values are JSON values (null, bool,
// number, string, array, object) with the Actions rules for truthiness and loose
// equality. Parsing and evaluation never throw on user input: errors are values
// that point into the expression.
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sandci::scheduler {

using Value = nlohmann::json;

struct ExpressionError {
  std::size_t offset = 0;  // 0-based offset into the expression text given
  std::string message;     // without the offset, e.g. "unexpected token ')'"

  // "message at offset N", e.g. "unexpected token ')' at offset 7".
  std::string to_string() const;
};

// Limits against hostile input: longer expressions and deeper nesting (of
// parentheses, '!', calls and indexes) are parse errors, never a stack overflow.
inline constexpr std::size_t kMaxExpressionLength = 64 * 1024;
inline constexpr std::size_t kMaxExpressionDepth = 256;
// Strings built by format(), join(), toJSON() and interpolate() may not grow
// beyond this (toJSON(toJSON(...)) doubles at each level): an error instead.
inline constexpr std::size_t kMaxResultLength = 8 * 1024 * 1024;

// Result of the job or run so far, for success()/failure()/cancelled()/always().
// success() is !any_failed && !cancelled; failure() is any_failed && !cancelled
// (as in Actions, a cancelled run is not a failed one); cancelled() is cancelled;
// always() is true.
struct StatusFunctions {
  bool any_failed = false;  // some needed job (or earlier step) failed
  bool cancelled = false;   // the run was cancelled
};

struct EvalContext {
  // Top-level contexts by name: github, env, vars, matrix, needs, steps, secrets,
  // inputs, job, runner, strategy. Missing ones evaluate to null.
  Value contexts = Value::object();
  StatusFunctions status;
  // hashFiles(patterns...): provided by the job runner; null means unsupported here.
  std::function<std::expected<std::string, std::string>(const std::vector<std::string>&)>
      hash_files;
};

// A context or function an expression names, where it is named. Contexts come
// in their canonical lower-case spelling, functions as documented (hashFiles).
struct ExpressionName {
  enum class Kind { context, function } kind;
  std::string name;
  std::size_t offset = 0;  // 0-based, into the text given to the function that found it
};

class Expression {
 public:
  virtual ~Expression() = default;
  virtual std::expected<Value, ExpressionError> evaluate(const EvalContext& ctx) const = 0;
  // True when the expression calls success(), failure(), always() or cancelled():
  // then an `if:` does not imply success().
  virtual bool uses_status_function() const = 0;
  // Every context and function the expression names, in text order.
  virtual const std::vector<ExpressionName>& names() const = 0;
};

// Parses the text between `${{` and `}}` (or a bare `if:` condition).
std::expected<std::unique_ptr<Expression>, ExpressionError> parse_expression(std::string_view text);

// Actions truthiness: false, 0, -0, NaN, "" and null are false.
bool is_truthy(const Value& value);

// Actions string conversion (used by format(), join() and interpolation):
// null -> "", true -> "true", numbers without a trailing ".0" (else 15 significant
// digits, as Actions), objects/arrays -> compact JSON (Actions prints "Object"/
// "Array"; JSON is more useful and is what toJSON gives, minus the indentation).
std::string to_display_string(const Value& value);

// Evaluates an `if:` condition: an optional `${{ }}` wrapper is stripped; an empty
// condition means success(); a condition without a status function is evaluated
// as `success() && (cond)`.
std::expected<bool, ExpressionError> evaluate_condition(std::string_view condition,
                                                        const EvalContext& ctx);

// Checks a condition parses exactly as evaluate_condition would read it (the
// wrapper rules included); offsets are into `condition`. For validation.
std::optional<ExpressionError> check_condition(std::string_view condition);

// The contexts and functions named by a condition, read as evaluate_condition
// reads it; empty when it does not parse (check_condition reports that).
// Offsets are into `condition`.
std::vector<ExpressionName> condition_names(std::string_view condition);

// The contexts and functions named by every `${{ }}` in text; expressions that
// do not parse are skipped (check_interpolation reports them). Offsets are into `text`.
std::vector<ExpressionName> interpolation_names(std::string_view text);

// Replaces every `${{ expr }}` in text with its display string. Error offsets are
// into `text`.
std::expected<std::string, ExpressionError> interpolate(std::string_view text,
                                                        const EvalContext& ctx);

// Checks every `${{ }}` in text parses (for validation). Offsets are into `text`.
std::vector<ExpressionError> check_interpolation(std::string_view text);

}  // namespace sandci::scheduler
