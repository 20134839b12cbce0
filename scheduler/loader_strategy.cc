// The workflow parser's `strategy:` and its matrix.
#include <algorithm>
#include <cmath>

#include "scheduler/did_you_mean.h"
#include "scheduler/loader_parser.h"

namespace sandci::scheduler::loader {

Strategy WorkflowParser::parse_strategy(const Entry& e) {
  Strategy strategy;
  auto fields = mapping(e.value, "'strategy'", KeyPlace::strategy);
  if (const Entry* m = find(fields, "matrix")) strategy.matrix = parse_matrix(*m);
  if (const Entry* f = find(fields, "fail-fast")) strategy.fail_fast = bool_of(*f).value_or(true);
  if (const Entry* p = find(fields, "max-parallel")) {
    auto n = as_number(p->value);
    if (!n || *n < 1 || *n != std::floor(*n) || *n > 1e6)
      error(where(*p), "'max-parallel' must be a positive whole number, not " + describe(p->value));
    else
      strategy.max_parallel = static_cast<int>(*n);
  }
  return strategy;
}

Matrix WorkflowParser::parse_matrix(const Entry& e) {
  Matrix matrix;
  if (is_expression(e.value)) {
    // Evaluated when the run is planned, or once the jobs it reads (needs.*) are done.
    matrix.expression = expression_of(e);
    return matrix;
  }
  auto fields = mapping(e.value, "'matrix'");
  if (!e.value.IsMap()) return matrix;
  std::vector<std::string> dimension_names;
  // Scalars inside matrix values may hold expressions; check them all.
  auto check_all = [this](const YAML::Node& root) {
    std::vector<YAML::Node> stack{root};
    while (!stack.empty()) {
      YAML::Node node = stack.back();
      stack.pop_back();
      if (node.IsScalar()) check_expressions(node);
      if (node.IsSequence())
        for (const auto& child : node) stack.push_back(child);
      if (node.IsMap())
        for (const auto& child : node) stack.push_back(child.second);
    }
  };
  auto objects = [&](const Entry& list, std::vector<nlohmann::json>& into,
                     std::vector<std::pair<YAML::Node, nlohmann::json>>* with_nodes) {
    if (!list.value.IsSequence()) {
      error(where(list), "'" + list.key + "' must be a list of mappings, not " + describe(list.value));
      return;
    }
    for (const auto& item : list.value) {
      if (!item.IsMap()) {
        error(item, "each entry of '" + list.key + "' must be a mapping, not " + describe(item));
        continue;
      }
      check_all(item);
      into.push_back(to_json(item));
      if (with_nodes) with_nodes->emplace_back(item, into.back());
    }
  };
  std::vector<std::pair<YAML::Node, nlohmann::json>> excludes;
  for (const auto& f : fields) {
    if ((f.key == "include" || f.key == "exclude") && is_expression(f.value)) {
      // `include: ${{ fromJSON(needs.setup.outputs.targets) }}`: resolved with the
      // dimensions written as expressions (matrix.h).
      matrix.dimension_expressions.emplace_back(f.key, expression_of(f));
    } else if (f.key == "include") {
      objects(f, matrix.include, nullptr);
    } else if (f.key == "exclude") {
      objects(f, matrix.exclude, &excludes);
    } else {
      dimension_names.push_back(f.key);
      if (is_expression(f.value)) {
        matrix.dimension_expressions.emplace_back(f.key, expression_of(f));
        matrix.dimensions.emplace_back(f.key, std::vector<nlohmann::json>{});
      } else if (!f.value.IsSequence()) {
        error(where(f), "matrix dimension '" + f.key + "' must be a list of values, not " +
                            describe(f.value));
      } else if (f.value.size() == 0) {
        error(where(f), "matrix dimension '" + f.key + "' must not be empty");
      } else {
        check_all(f.value);
        std::vector<nlohmann::json> values;
        for (const auto& item : f.value) values.push_back(to_json(item));
        matrix.dimensions.emplace_back(f.key, std::move(values));
      }
    }
  }
  for (const auto& [node, object] : excludes) {
    for (const auto& pair : node) {
      const std::string key = pair.first.Scalar();
      if (std::find(dimension_names.begin(), dimension_names.end(), key) == dimension_names.end())
        error(pair.first, "'exclude' names '" + key + "', which is not a matrix dimension" +
                              did_you_mean(key, dimension_names));
    }
  }
  const bool has_combinations = std::any_of(fields.begin(), fields.end(), [](const Entry& f) {
    return f.key != "exclude";
  });
  if (!has_combinations) error(where(e), "the matrix has no dimensions and no 'include'");
  return matrix;
}

}  // namespace sandci::scheduler::loader
