#pragma once
// The plan of a workflow run: every concrete job (matrices expanded), the
// dependency DAG between them, its levels and its critical path. Built with
// Kahn's algorithm; jobs that are ready together are ordered by critical path
// (longest remaining path to a sink, weighted by each job's last known
// duration, else 1), then by declaration order.
#include <cstddef>
#include <expected>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/diagnostic.h"
#include "scheduler/matrix.h"
#include "scheduler/workflow.h"

namespace sandci::scheduler {

// Last known durations in seconds, by concrete job name ("build (linux, 20)")
// or by job id (then for every instance of the job).
using Durations = std::unordered_map<std::string, double>;

struct PlanOptions {
  MatrixOptions matrix;
  Durations durations;
};

class Plan {
 public:
  // Expands every job and orders them. Errors: matrix errors, unknown or
  // duplicate job ids, and cycles, reported as "a -> b -> c -> a" where each job
  // needs the next. The plan points into `workflow`, which must outlive it.
  static std::expected<Plan, Diagnostics> build(const Workflow& workflow,
                                                const PlanOptions& options = {});

  const Workflow& workflow() const { return *workflow_; }
  std::size_t size() const { return jobs_.size(); }
  const std::vector<ConcreteJob>& jobs() const { return jobs_; }
  const ConcreteJob& concrete(std::size_t i) const { return jobs_[i]; }
  const Job& job(std::size_t i) const { return workflow_->jobs[job_index_[i]]; }
  // concrete(i).job_index, from a compact array (the executor's hot loop).
  std::size_t job_index(std::size_t i) const { return job_index_[i]; }

  // Concrete jobs job i waits for (every instance of every job it needs), and
  // the concrete jobs waiting for job i (ascending).
  std::span<const std::size_t> needs(std::size_t i) const;
  std::span<const std::size_t> dependents(std::size_t i) const;
  // Concrete jobs of workflow job `job_index`, in matrix order.
  std::span<const std::size_t> instances(std::size_t job_index) const;
  // Workflow job indices that workflow job `job_index` needs, in `needs:` order.
  std::span<const std::size_t> job_needs(std::size_t job_index) const;

  double weight(std::size_t i) const { return weight_[i]; }
  // Longest path from job i to a sink, job i's own weight included.
  double priority(std::size_t i) const { return priority_[i]; }
  // True when job a should start before job b once both are ready.
  bool runs_before(std::size_t a, std::size_t b) const {
    return priority_[a] != priority_[b] ? priority_[a] > priority_[b] : a < b;
  }

  // 0 for jobs without needs, else one more than the deepest job they need.
  std::size_t level(std::size_t i) const { return level_[i]; }
  // Jobs by level, each level in start order (runs_before).
  const std::vector<std::vector<std::size_t>>& levels() const { return levels_; }
  // Every job in the order one runner would start them (Kahn's algorithm
  // choosing the ready job that runs_before the others).
  const std::vector<std::size_t>& order() const { return order_; }
  // The heaviest path from a job without needs to a sink, in run order.
  const std::vector<std::size_t>& critical_path() const { return critical_path_; }
  double critical_path_weight() const;

 private:
  Plan() = default;
  std::expected<void, Diagnostics> resolve_needs(const Workflow& workflow);
  std::expected<void, Diagnostics> check_cycles(const Workflow& workflow) const;
  void build_edges();
  void compute_weights(const Durations& durations);
  void compute_order();
  bool compute_priorities_and_levels();  // false: the graph has a cycle

  const Workflow* workflow_ = nullptr;
  std::vector<ConcreteJob> jobs_;
  std::vector<std::size_t> job_index_;
  // Compressed adjacency lists: entries [offsets[i], offsets[i+1]).
  std::vector<std::size_t> needs_offsets_, needs_;
  std::vector<std::size_t> dependents_offsets_, dependents_;
  std::vector<std::size_t> instance_offsets_, instances_;
  std::vector<std::size_t> job_needs_offsets_, job_needs_;
  std::vector<double> weight_, priority_;
  std::vector<std::size_t> level_;
  std::vector<std::vector<std::size_t>> levels_;
  std::vector<std::size_t> order_;
  std::vector<std::size_t> critical_path_;
};

}  // namespace sandci::scheduler
