#pragma once
// Which contexts and special functions GitHub allows in the expressions of each
// workflow key, as data: GitHub's "context availability" table (contexts reference).
// The loader checks every expression against the row of its key, and
// docs/workflow-syntax.md prints the same rows (a unit test keeps them equal).
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "scheduler/expression.h"

namespace sandci::scheduler {

struct ContextAvailability {
  // The key as GitHub's table spells it, e.g. "jobs.<job_id>.steps.if".
  std::string_view key;
  // The contexts allowed there, in the table's order.
  std::span<const std::string_view> contexts;
  // The special functions allowed there (status functions, hashFiles); other
  // functions (contains, format, toJSON...) are allowed everywhere.
  std::span<const std::string_view> functions;
};

// Every row of the table, in the table's order.
std::span<const ContextAvailability> context_availability();

// The row of `key` (spelt as in the table); nullptr when the table has no such key.
const ContextAvailability* find_availability(std::string_view key);

// True for the functions GitHub allows only at some keys: always, cancelled,
// success, failure and hashFiles (case-insensitive).
bool is_special_function(std::string_view name);

// Nullopt when `name` may be used at the row's key; else the message, naming what
// is used, `path` (the key as written in this workflow, e.g. "jobs.build.if") and
// what is allowed: "`secrets` is not available in jobs.build.if; available: github,
// needs, vars, inputs".
std::optional<std::string> unavailable_message(const ContextAvailability& row,
                                               const ExpressionName& name, std::string_view path);

}  // namespace sandci::scheduler
