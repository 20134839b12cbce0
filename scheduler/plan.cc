#include "scheduler/plan.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <string_view>

namespace sandci::scheduler {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// Job id -> index of its first job. Open addressing over ids copied next to
// each other: with node-based maps and ids inside the large Job structs, every
// probe of a big workflow missed the cache.
class IdIndex {
 public:
  explicit IdIndex(const std::vector<Job>& jobs) {
    std::size_t bytes = 0;
    for (const Job& job : jobs) bytes += job.id.size();
    arena_.reserve(bytes);
    starts_.reserve(jobs.size() + 1);
    for (const Job& job : jobs) {
      starts_.push_back(arena_.size());
      arena_ += job.id;
    }
    starts_.push_back(arena_.size());
    std::size_t capacity = 16;
    while (capacity < jobs.size() * 2) capacity *= 2;
    mask_ = capacity - 1;
    slots_.assign(capacity, Slot{0, kNone});
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const std::size_t hash = std::hash<std::string_view>{}(id(j));
      std::size_t at = hash & mask_;
      while (slots_[at].index != kNone) {
        if (slots_[at].hash == hash && id(slots_[at].index) == id(j)) break;  // keep the first
        at = (at + 1) & mask_;
      }
      if (slots_[at].index == kNone) slots_[at] = {hash, j};
    }
  }

  // The index of the first job with this id, or kNone.
  std::size_t find(std::string_view key) const {
    const std::size_t hash = std::hash<std::string_view>{}(key);
    for (std::size_t at = hash & mask_; slots_[at].index != kNone; at = (at + 1) & mask_)
      if (slots_[at].hash == hash && id(slots_[at].index) == key) return slots_[at].index;
    return kNone;
  }

 private:
  struct Slot {
    std::size_t hash;
    std::size_t index;
  };
  std::string_view id(std::size_t j) const {
    return std::string_view(arena_).substr(starts_[j], starts_[j + 1] - starts_[j]);
  }

  std::string arena_;
  std::vector<std::size_t> starts_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// Kahn's algorithm over the workflow jobs left nodes behind: each of them still
// waits for another left-behind job, so following needs from any of them must
// come back to a job already seen. Returns that cycle, starting at its first
// declared job, with the first job repeated at the end.
std::vector<std::size_t> find_cycle(const std::vector<std::size_t>& offsets,
                                    const std::vector<std::size_t>& needs,
                                    const std::vector<std::size_t>& remaining) {
  std::vector<std::size_t> seen_at(remaining.size(), kNone);
  std::vector<std::size_t> walk;
  std::size_t node = 0;
  while (remaining[node] == 0) ++node;
  while (seen_at[node] == kNone) {
    seen_at[node] = walk.size();
    walk.push_back(node);
    std::size_t next = node;
    for (std::size_t e = offsets[node]; e < offsets[node + 1]; ++e) {
      if (remaining[needs[e]] != 0) {
        next = needs[e];
        break;
      }
    }
    node = next;
  }
  std::vector<std::size_t> cycle(walk.begin() + static_cast<std::ptrdiff_t>(seen_at[node]),
                                 walk.end());
  std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
  cycle.push_back(cycle.front());
  return cycle;
}

}  // namespace

std::span<const std::size_t> Plan::needs(std::size_t i) const {
  return {needs_.data() + needs_offsets_[i], needs_offsets_[i + 1] - needs_offsets_[i]};
}

std::span<const std::size_t> Plan::dependents(std::size_t i) const {
  return {dependents_.data() + dependents_offsets_[i],
          dependents_offsets_[i + 1] - dependents_offsets_[i]};
}

std::span<const std::size_t> Plan::instances(std::size_t job_index) const {
  return {instances_.data() + instance_offsets_[job_index],
          instance_offsets_[job_index + 1] - instance_offsets_[job_index]};
}

std::span<const std::size_t> Plan::job_needs(std::size_t job_index) const {
  return {job_needs_.data() + job_needs_offsets_[job_index],
          job_needs_offsets_[job_index + 1] - job_needs_offsets_[job_index]};
}

double Plan::critical_path_weight() const {
  return critical_path_.empty() ? 0.0 : priority_[critical_path_.front()];
}

std::expected<Plan, Diagnostics> Plan::build(const Workflow& workflow, const PlanOptions& options) {
  Plan plan;
  plan.workflow_ = &workflow;
  if (auto resolved = plan.resolve_needs(workflow); !resolved)
    return std::unexpected(std::move(resolved.error()));

  Diagnostics errors;
  plan.instance_offsets_.reserve(workflow.jobs.size() + 1);
  plan.instance_offsets_.push_back(0);
  plan.jobs_.reserve(workflow.jobs.size());
  for (std::size_t j = 0; j < workflow.jobs.size(); ++j) {
    const Job& job = workflow.jobs[j];
    // The common case, without the vector expand_matrix returns.
    if ((!job.strategy || job.strategy->matrix.empty()) &&
        job.name.find("${{") == std::string::npos) {
      plan.jobs_.push_back(ConcreteJob{j, job.name.empty() ? job.id : job.name, nullptr, 0, 1});
      plan.instance_offsets_.push_back(plan.jobs_.size());
      continue;
    }
    auto expanded = expand_matrix(job, j, options.matrix);
    if (!expanded) {
      errors.push_back(std::move(expanded.error()));
    } else {
      for (auto& job : *expanded) plan.jobs_.push_back(std::move(job));
    }
    plan.instance_offsets_.push_back(plan.jobs_.size());
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));

  plan.job_index_.resize(plan.jobs_.size());
  for (std::size_t i = 0; i < plan.jobs_.size(); ++i) plan.job_index_[i] = plan.jobs_[i].job_index;
  plan.instances_.resize(plan.jobs_.size());
  for (std::size_t i = 0; i < plan.instances_.size(); ++i) plan.instances_[i] = i;
  // With matrices, cycles are looked for among the workflow jobs, before the
  // matrices multiply the edges. Without, the concrete graph is the same graph
  // and the topological sort below finds them without an extra pass.
  bool one_job_each = true;
  for (std::size_t j = 0; j < workflow.jobs.size(); ++j)
    one_job_each = one_job_each && plan.instances(j).size() == 1;
  if (!one_job_each) {
    if (auto acyclic = plan.check_cycles(workflow); !acyclic)
      return std::unexpected(std::move(acyclic.error()));
  }
  plan.build_edges();
  plan.compute_weights(options.durations);
  if (!plan.compute_priorities_and_levels()) {
    auto acyclic = plan.check_cycles(workflow);  // names the cycle
    if (!acyclic) return std::unexpected(std::move(acyclic.error()));
    return std::unexpected(Diagnostics{{{workflow.file, 0, 0}, "jobs need each other in a cycle"}});
  }
  plan.compute_order();
  return plan;
}

std::expected<void, Diagnostics> Plan::resolve_needs(const Workflow& workflow) {
  const std::size_t n = workflow.jobs.size();
  Diagnostics errors;
  IdIndex by_id(workflow.jobs);
  for (std::size_t j = 0; j < n; ++j)
    if (by_id.find(workflow.jobs[j].id) != j)
      errors.push_back({workflow.jobs[j].location, "duplicate job id '" + workflow.jobs[j].id + "'"});

  job_needs_offsets_.reserve(n + 1);
  job_needs_offsets_.push_back(0);
  for (const Job& job : workflow.jobs) {
    const std::size_t first = job_needs_.size();
    for (const std::string& need : job.needs) {
      const std::size_t found = by_id.find(need);
      if (found == kNone) {
        errors.push_back({job.location, "job '" + job.id + "' needs unknown job '" + need + "'"});
        continue;
      }
      // `needs: [a, a]` is one dependency.
      if (std::find(job_needs_.begin() + static_cast<std::ptrdiff_t>(first), job_needs_.end(),
                    found) == job_needs_.end())
        job_needs_.push_back(found);
    }
    job_needs_offsets_.push_back(job_needs_.size());
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return {};
}

std::expected<void, Diagnostics> Plan::check_cycles(const Workflow& workflow) const {
  const std::size_t n = workflow.jobs.size();
  // Kahn's algorithm on the workflow jobs: whatever it cannot reach is on or
  // behind a cycle.
  std::vector<std::size_t> remaining(n);
  std::vector<std::size_t> dependents_count(n + 1, 0);
  for (std::size_t j = 0; j < n; ++j) {
    remaining[j] = job_needs_offsets_[j + 1] - job_needs_offsets_[j];
    for (std::size_t e = job_needs_offsets_[j]; e < job_needs_offsets_[j + 1]; ++e)
      ++dependents_count[job_needs_[e] + 1];
  }
  for (std::size_t j = 0; j < n; ++j) dependents_count[j + 1] += dependents_count[j];
  std::vector<std::size_t> dependents(job_needs_.size());
  std::vector<std::size_t> fill(dependents_count.begin(), dependents_count.end() - 1);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t e = job_needs_offsets_[j]; e < job_needs_offsets_[j + 1]; ++e)
      dependents[fill[job_needs_[e]]++] = j;

  std::vector<std::size_t> queue;
  queue.reserve(n);
  for (std::size_t j = 0; j < n; ++j)
    if (remaining[j] == 0) queue.push_back(j);
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const std::size_t j = queue[head];
    for (std::size_t e = dependents_count[j]; e < dependents_count[j + 1]; ++e)
      if (--remaining[dependents[e]] == 0) queue.push_back(dependents[e]);
  }
  if (queue.size() == n) return {};

  auto cycle = find_cycle(job_needs_offsets_, job_needs_, remaining);
  std::string text;
  for (std::size_t j : cycle) text += (text.empty() ? "" : " -> ") + workflow.jobs[j].id;
  return std::unexpected(
      Diagnostics{{workflow.jobs[cycle.front()].location, "jobs need each other in a cycle: " + text}});
}

void Plan::build_edges() {
  const std::size_t n = jobs_.size();
  needs_offsets_.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t count = 0;
    for (std::size_t need : job_needs(job_index_[i])) count += instances(need).size();
    needs_offsets_[i + 1] = needs_offsets_[i] + count;
  }
  needs_.resize(needs_offsets_[n]);
  dependents_offsets_.assign(n + 1, 0);
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t need : job_needs(job_index_[i])) {
      for (std::size_t k : instances(need)) {
        needs_[at++] = k;
        ++dependents_offsets_[k + 1];
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) dependents_offsets_[i + 1] += dependents_offsets_[i];
  dependents_.resize(needs_.size());
  std::vector<std::size_t> fill(dependents_offsets_.begin(), dependents_offsets_.end() - 1);
  // Walking i upwards keeps each dependents list ascending.
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t e = needs_offsets_[i]; e < needs_offsets_[i + 1]; ++e)
      dependents_[fill[needs_[e]]++] = i;
}

void Plan::compute_weights(const Durations& durations) {
  weight_.assign(jobs_.size(), 1.0);
  if (durations.empty()) return;
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    auto it = durations.find(jobs_[i].name);
    if (it == durations.end()) it = durations.find(job(i).id);
    // A zero or negative duration would let a long chain look free.
    if (it != durations.end() && it->second > 0) weight_[i] = it->second;
  }
}

bool Plan::compute_priorities_and_levels() {
  const std::size_t n = jobs_.size();
  // A plain topological order first (FIFO Kahn's): priorities need every
  // dependent done before the job, levels every need before it.
  std::vector<std::size_t> topo;
  topo.reserve(n);
  std::vector<std::size_t> remaining(n);
  for (std::size_t i = 0; i < n; ++i) {
    remaining[i] = needs_offsets_[i + 1] - needs_offsets_[i];
    if (remaining[i] == 0) topo.push_back(i);
  }
  for (std::size_t head = 0; head < topo.size(); ++head)
    for (std::size_t d : dependents(topo[head]))
      if (--remaining[d] == 0) topo.push_back(d);
  if (topo.size() != n) return false;  // a cycle

  level_.assign(n, 0);
  std::size_t depth = 0;
  for (std::size_t i : topo) {
    for (std::size_t need : needs(i)) level_[i] = std::max(level_[i], level_[need] + 1);
    depth = std::max(depth, level_[i] + 1);
  }

  priority_.assign(n, 0.0);
  std::vector<std::size_t> next(n, kNone);
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const std::size_t i = *it;
    double best = 0.0;
    for (std::size_t d : dependents(i)) {
      if (next[i] == kNone || priority_[d] > best) {
        best = priority_[d];
        next[i] = d;
      }
    }
    priority_[i] = weight_[i] + best;
  }

  levels_.assign(n == 0 ? 0 : depth, {});
  for (std::size_t i = 0; i < n; ++i) levels_[level_[i]].push_back(i);
  // Sorted as (priority, index) pairs: comparing through indices would chase
  // them into priority_ on every comparison.
  std::vector<std::pair<double, std::size_t>> keyed;
  for (auto& level : levels_) {
    keyed.clear();
    for (std::size_t i : level) keyed.emplace_back(-priority_[i], i);
    std::sort(keyed.begin(), keyed.end());
    for (std::size_t k = 0; k < level.size(); ++k) level[k] = keyed[k].second;
  }

  critical_path_.clear();
  if (n == 0) return true;
  std::size_t start = levels_[0].front();  // the first in start order weighs the most
  for (std::size_t i = start; i != kNone; i = next[i]) critical_path_.push_back(i);
  return true;
}

void Plan::compute_order() {
  const std::size_t n = jobs_.size();
  // Max-heap on (priority, -index): the top runs_before every other entry.
  using Entry = std::pair<double, std::ptrdiff_t>;
  std::priority_queue<Entry> ready;
  auto push = [&](std::size_t i) { ready.emplace(priority_[i], -static_cast<std::ptrdiff_t>(i)); };
  std::vector<std::size_t> remaining(n);
  for (std::size_t i = 0; i < n; ++i) {
    remaining[i] = needs_offsets_[i + 1] - needs_offsets_[i];
    if (remaining[i] == 0) push(i);
  }
  order_.clear();
  order_.reserve(n);
  while (!ready.empty()) {
    const auto i = static_cast<std::size_t>(-ready.top().second);
    ready.pop();
    order_.push_back(i);
    for (std::size_t d : dependents(i))
      if (--remaining[d] == 0) push(d);
  }
}

}  // namespace sandci::scheduler
