#include "scheduler/matrix.h"

#include <utility>

#include "scheduler/expression.h"
#include "scheduler/value_expression.h"

namespace sandci::scheduler {
namespace {

// A combination keeps its keys in order (dimensions first, then keys added by
// include), because the display name lists the values in that order.
using Combination = std::vector<std::pair<std::string, nlohmann::json>>;

const nlohmann::json* find_key(const Combination& combination, const std::string& key) {
  for (const auto& [k, v] : combination)
    if (k == key) return &v;
  return nullptr;
}

void set_key(Combination& combination, const std::string& key, const nlohmann::json& value) {
  for (auto& [k, v] : combination) {
    if (k == key) {
      v = value;
      return;
    }
  }
  combination.emplace_back(key, value);
}

bool matches_exclude(const Combination& combination, const nlohmann::json& exclude) {
  if (!exclude.is_object() || exclude.empty()) return false;
  for (const auto& [key, value] : exclude.items()) {
    const auto* have = find_key(combination, key);
    if (!have || *have != value) return false;
  }
  return true;
}

bool is_dimension(const Matrix& matrix, const std::string& key) {
  for (const auto& [name, values] : matrix.dimensions)
    if (name == key) return true;
  return false;
}

// An include entry extends a combination when every dimension key it names has
// the same value there: it may add keys but never change an original value.
bool include_extends(const Matrix& matrix, const Combination& combination,
                     const nlohmann::json& entry) {
  for (const auto& [key, value] : entry.items()) {
    if (!is_dimension(matrix, key)) continue;
    const auto* have = find_key(combination, key);
    if (!have || *have != value) return false;
  }
  return true;
}

std::expected<std::vector<Combination>, Diagnostic> expand_combinations(
    const Job& job, const Matrix& matrix, const MatrixOptions& options) {
  std::vector<Combination> combinations;
  if (!matrix.dimensions.empty()) {
    // Check the size before building anything: a few wide dimensions multiply fast.
    // Excludes may shrink the product afterwards, hence the slack.
    const std::size_t limit = options.max_jobs * 64;
    std::size_t total = 1;
    for (const auto& [name, values] : matrix.dimensions) {
      if (values.empty())
        return std::unexpected(Diagnostic{
            job.location, "matrix dimension '" + name + "' of job '" + job.id + "' has no values"});
      if (values.size() > limit || total * values.size() > limit)
        return std::unexpected(Diagnostic{job.location, "matrix of job '" + job.id +
                                                            "' has too many combinations"});
      total *= values.size();
    }
    combinations.reserve(total);
    combinations.emplace_back();
    for (const auto& [name, values] : matrix.dimensions) {
      std::vector<Combination> next;
      next.reserve(combinations.size() * values.size());
      for (const auto& combination : combinations) {
        for (const auto& value : values) {
          next.push_back(combination);
          next.back().emplace_back(name, value);
        }
      }
      combinations = std::move(next);
    }
  }

  std::erase_if(combinations, [&](const Combination& combination) {
    for (const auto& exclude : matrix.exclude)
      if (matches_exclude(combination, exclude)) return true;
    return false;
  });

  // Only the original combinations can be extended; entries that extend none
  // are appended afterwards, each as its own combination.
  const std::size_t original = combinations.size();
  std::vector<Combination> added;
  for (const auto& entry : matrix.include) {
    if (!entry.is_object()) continue;
    bool extended = false;
    for (std::size_t i = 0; i < original; ++i) {
      if (!include_extends(matrix, combinations[i], entry)) continue;
      for (const auto& [key, value] : entry.items()) set_key(combinations[i], key, value);
      extended = true;
    }
    if (!extended) {
      // The entry's own key order is lost (JSON objects are sorted): list the
      // matrix dimensions in their order first, then the other keys.
      Combination combination;
      for (const auto& [name, values] : matrix.dimensions)
        if (entry.contains(name)) combination.emplace_back(name, entry.at(name));
      for (const auto& [key, value] : entry.items())
        if (!is_dimension(matrix, key)) combination.emplace_back(key, value);
      added.push_back(std::move(combination));
    }
  }
  for (auto& combination : added) combinations.push_back(std::move(combination));

  if (combinations.size() > options.max_jobs)
    return std::unexpected(Diagnostic{
        job.location, "matrix of job '" + job.id + "' yields " +
                          std::to_string(combinations.size()) + " jobs; at most " +
                          std::to_string(options.max_jobs) + " are allowed"});
  return combinations;
}

std::string interpolate_name(const std::string& name, const nlohmann::json& matrix) {
  EvalContext ctx;
  ctx.contexts["matrix"] = matrix.is_null() ? nlohmann::json::object() : matrix;
  auto result = interpolate(name, ctx);
  // A name is only a label: keep it as written rather than failing the plan.
  return result ? *result : name;
}

}  // namespace

std::string matrix_value_display(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

namespace {

// The concrete jobs of `matrix` (a plain one, without expressions), named after `job`.
std::expected<std::vector<ConcreteJob>, Diagnostic> combinations_of(const Job& job, const Matrix& matrix,
                                                                    std::size_t job_index,
                                                                    const MatrixOptions& options) {
  const std::string& base = job.name.empty() ? job.id : job.name;
  const bool templated = base.find("${{") != std::string::npos;
  std::vector<ConcreteJob> jobs;
  auto combinations = expand_combinations(job, matrix, options);
  if (!combinations) return std::unexpected(std::move(combinations.error()));

  jobs.reserve(combinations->size());
  for (std::size_t i = 0; i < combinations->size(); ++i) {
    const Combination& combination = (*combinations)[i];
    nlohmann::json matrix = nlohmann::json::object();
    std::string suffix;
    for (const auto& [key, value] : combination) {
      matrix[key] = value;
      if (!suffix.empty()) suffix += ", ";
      suffix += matrix_value_display(value);
    }
    std::string name = templated ? interpolate_name(base, matrix) : base + " (" + suffix + ")";
    jobs.push_back(ConcreteJob{job_index, std::move(name), std::move(matrix), i,
                               combinations->size()});
  }
  return jobs;
}

}  // namespace

std::expected<std::vector<ConcreteJob>, Diagnostic> expand_matrix(const Job& job,
                                                                  std::size_t job_index,
                                                                  const MatrixOptions& options) {
  const std::string& base = job.name.empty() ? job.id : job.name;
  const bool templated = base.find("${{") != std::string::npos;
  if (job.strategy && job.strategy->matrix.from_expression())
    return std::vector<ConcreteJob>{ConcreteJob{
        job_index, (templated ? interpolate_name(base, nullptr) : base) + " (matrix)", nullptr, 0, 1}};
  if (!job.strategy || job.strategy->matrix.empty())
    return std::vector<ConcreteJob>{
        ConcreteJob{job_index, templated ? interpolate_name(base, nullptr) : base, nullptr, 0, 1}};
  return combinations_of(job, job.strategy->matrix, job_index, options);
}

namespace {

std::expected<std::vector<nlohmann::json>, std::string> list_of(const Value& value, const std::string& what,
                                                                 bool objects) {
  if (!value.is_array()) return std::unexpected(what + " must be a list, not " + to_display_string(value));
  if (value.empty() && !objects) return std::unexpected(what + " must not be empty");
  std::vector<nlohmann::json> items;
  for (const auto& item : value) {
    if (objects && !item.is_object())
      return std::unexpected("each entry of " + what + " must be a mapping, not " + to_display_string(item));
    items.push_back(item);
  }
  return items;
}

}  // namespace

std::expected<void, std::string> resolve_matrix(Matrix& matrix, const EvalContext& context) {
  if (!matrix.expression.empty()) {
    auto value = evaluate_value(matrix.expression, context);
    if (!value) return std::unexpected("'matrix: " + matrix.expression + "': " + value.error().message);
    if (!value->is_object() || value->empty())
      return std::unexpected("'matrix: " + matrix.expression + "' must give a mapping of dimensions, not " +
                             to_display_string(*value));
    Matrix resolved;
    for (const auto& [key, item] : value->items()) {
      const bool list_of_objects = key == "include" || key == "exclude";
      auto items = list_of(item, "matrix '" + key + "'", list_of_objects);
      if (!items) return std::unexpected(items.error());
      if (key == "include")
        resolved.include = std::move(*items);
      else if (key == "exclude")
        resolved.exclude = std::move(*items);
      else
        resolved.dimensions.emplace_back(key, std::move(*items));
    }
    if (resolved.dimensions.empty() && resolved.include.empty())
      return std::unexpected("'matrix: " + matrix.expression + "' gives no dimensions and no 'include'");
    matrix = std::move(resolved);
    return {};
  }
  for (const auto& [name, text] : matrix.dimension_expressions) {
    const bool objects = name == "include" || name == "exclude";
    const std::string what = objects ? "matrix '" + name + "'" : "matrix dimension '" + name + "'";
    auto value = evaluate_value(text, context);
    if (!value) return std::unexpected(what + ": " + value.error().message);
    auto items = list_of(*value, what, objects);
    if (!items) return std::unexpected(items.error());
    if (name == "include") {
      matrix.include = std::move(*items);
    } else if (name == "exclude") {
      matrix.exclude = std::move(*items);
    } else {
      for (auto& [dimension, values] : matrix.dimensions)
        if (dimension == name) values = std::move(*items);
    }
  }
  matrix.dimension_expressions.clear();
  return {};
}

namespace {

bool reads_needs(const Matrix& matrix) {
  if (matrix.expression.find("needs.") != std::string::npos) return true;
  for (const auto& [name, text] : matrix.dimension_expressions)
    if (text.find("needs.") != std::string::npos) return true;
  return false;
}

}  // namespace

Diagnostics resolve_planned_matrices(Workflow& workflow, const EvalContext& context) {
  Diagnostics errors;
  for (auto& job : workflow.jobs) {
    if (!job.strategy || !job.strategy->matrix.from_expression() || reads_needs(job.strategy->matrix)) continue;
    if (auto resolved = resolve_matrix(job.strategy->matrix, context); !resolved)
      errors.push_back({job.location, "job '" + job.id + "': " + resolved.error()});
  }
  return errors;
}

bool matrix_grows_at_run_time(const Job& job) {
  return job.strategy && job.strategy->matrix.from_expression();
}

namespace {

// The matrix as written, for messages: the whole expression, else each expression entry.
std::string written_matrix(const Matrix& matrix) {
  if (!matrix.expression.empty()) return matrix.expression;
  std::string text;
  for (const auto& [name, expression] : matrix.dimension_expressions)
    text += (text.empty() ? "" : ", ") + name + ": " + expression;
  return text;
}

nlohmann::json matrix_as_json(const Matrix& matrix) {
  nlohmann::json value = nlohmann::json::object();
  for (const auto& [name, values] : matrix.dimensions) value[name] = values;
  if (!matrix.include.empty()) value["include"] = matrix.include;
  if (!matrix.exclude.empty()) value["exclude"] = matrix.exclude;
  return value;
}

}  // namespace

std::expected<std::vector<ConcreteJob>, std::string> grow_matrix(const Job& job, std::size_t job_index,
                                                                 const EvalContext& context,
                                                                 const MatrixOptions& options) {
  const std::string what = "the matrix of job '" + job.id + "'";
  if (!matrix_grows_at_run_time(job)) return std::unexpected(what + " is not computed at run time");
  Matrix matrix = job.strategy->matrix;
  const std::string written = written_matrix(matrix);
  if (auto resolved = resolve_matrix(matrix, context); !resolved)
    return std::unexpected(what + " cannot be computed: " + resolved.error());
  auto jobs = combinations_of(job, matrix, job_index, options);
  if (!jobs) return std::unexpected(what + " (" + written + "): " + jobs.error().message);
  if (jobs->empty())
    return std::unexpected(what + " is empty: " + written + " gave " + matrix_as_json(matrix).dump() +
                           ", which leaves no combination to run");
  return std::move(*jobs);
}

std::string grown_matrix_note(const Job& job) {
  std::string needs;
  for (const auto& need : job.needs) needs += (needs.empty() ? "'" : ", '") + need + "'";
  return "the matrix of job '" + job.id + "' is computed while the run goes on: its jobs are known when " +
         (needs.empty() ? std::string("the run starts") : needs + (job.needs.size() == 1 ? " is" : " are") + " done");
}

}  // namespace sandci::scheduler
