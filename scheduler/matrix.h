#pragma once
// Matrix expansion: one workflow job becomes the concrete jobs Actions would run,
// named the way Actions names them ("build (linux, 20)").
#include <cstddef>
#include <expected>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/diagnostic.h"
#include "scheduler/expression.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

// One job the executor runs: a workflow job, or one combination of its matrix.
struct ConcreteJob {
  std::size_t job_index = 0;  // index into Workflow::jobs
  std::string name;           // display name: "build (linux, 20)", or the job's name or id
  nlohmann::json matrix;      // the combination (an object); null for a job without matrix
  std::size_t matrix_index = 0;  // strategy.job-index
  std::size_t matrix_total = 1;  // strategy.job-total
};

struct MatrixOptions {
  // Actions refuses matrices of more than 256 jobs; the benchmark raises it.
  std::size_t max_jobs = 256;
};

// Expands `job` (at `job_index` in its workflow) into its concrete jobs:
// the cartesian product of the dimensions (first dimension outermost), minus the
// combinations an `exclude` entry matches (all of its keys equal), then each
// `include` entry is added to every original combination whose dimension values
// it does not contradict (its other keys are added or overwrite earlier added
// keys); an entry that extends no combination becomes a combination of its own.
// A job without matrix yields one concrete job. A matrix whose expansion is
// empty yields no jobs. A matrix still written as an expression yields one job
// named "<name> (matrix)" with a null matrix (see grow_matrix). Names: the job's name (or id) followed by the
// combination's values in order, "build (linux, 20)"; a name holding `${{ }}` is
// interpolated with the matrix context instead (kept as written when that fails).
std::expected<std::vector<ConcreteJob>, Diagnostic> expand_matrix(const Job& job,
                                                                  std::size_t job_index,
                                                                  const MatrixOptions& options = {});

// Evaluates a matrix written with expressions (`matrix: ${{ fromJSON(...) }}`, or
// a dimension `os: ${{ ... }}`) with `context`; afterwards it is a plain matrix.
// The whole matrix must give an object (dimensions as lists, `include` and
// `exclude` as lists of objects); a dimension must give a non-empty list.
// Errors say which expression and why.
std::expected<void, std::string> resolve_matrix(Matrix& matrix, const EvalContext& context);

// Resolves the matrix expressions of every job that reads only what is known
// before any job runs (github, inputs, vars, env...): those reading `needs.`
// are left for run time. Errors at each job's position.
Diagnostics resolve_planned_matrices(Workflow& workflow, const EvalContext& context);

// Whether the job's matrix is still an expression when the run starts (it reads
// needs.*): the plan holds one placeholder job "<name> (matrix)" for it, and the
// executor grows the plan with its combinations once the needed jobs are done.
bool matrix_grows_at_run_time(const Job& job);

// Evaluates such a matrix with `context` (the job's contexts, needs.* included)
// and expands it as expand_matrix would a written one. Errors name the job and
// say why: the expression fails or gives no mapping of lists, the matrix has more
// than options.max_jobs combinations, or it leaves none (the value is shown).
std::expected<std::vector<ConcreteJob>, std::string> grow_matrix(const Job& job, std::size_t job_index,
                                                                 const EvalContext& context,
                                                                 const MatrixOptions& options = {});

// For `sandci plan`: when a grown matrix's jobs become known ("... when 'setup' is done").
std::string grown_matrix_note(const Job& job);

// How a matrix value appears in a job name: strings as they are, other values
// as compact JSON ("20", "true", {"os":"linux"}).
std::string matrix_value_display(const nlohmann::json& value);

}  // namespace sandci::scheduler
