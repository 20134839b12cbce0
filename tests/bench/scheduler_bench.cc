// Planner and executor figures: plans and dry-runs (a runner that completes
// every job at once) random DAGs and a large matrix, each case in a forked
// child so that its peak RSS (VmHWM) is its own. Prints one line per case.
//
//   build/tests/bench_scheduler_bench            # 10k, 100k and 1M-job DAGs, 10k/100k matrices
//   build/tests/bench_scheduler_bench 100000     # only the DAG of that size
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "scheduler/executor.h"
#include "scheduler/plan.h"

namespace {

using namespace sandci::scheduler;
using Seconds = std::chrono::duration<double>;

// Completes every job as soon as it starts.
class NoopRunner final : public JobRunner {
 public:
  void start(JobRequest request) override { done_.push_back(request.index); }
  void stop(std::size_t) override {}
  std::optional<JobCompletion> wait(std::optional<Clock::time_point>) override {
    if (done_.empty()) return std::nullopt;
    JobCompletion completion{done_.back(), {}};
    done_.pop_back();
    return completion;
  }
  void wake() override {}

 private:
  std::vector<std::size_t> done_;
};

double vm_hwm_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

struct Figures {
  std::size_t jobs = 0, edges = 0;
  double build_ms = 0, plan_ms = 0, run_ms = 0;
  double build_cpu = 0, plan_cpu = 0, run_cpu = 0;
  double rss_workflow = 0, rss_plan = 0, rss_run = 0;
  bool ok = false;
};

// Job i needs up to `fan_in` distinct random earlier jobs: a DAG with about
// fan_in * n edges.
Workflow random_dag(std::size_t n, std::size_t fan_in, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Workflow workflow;
  workflow.file = "bench.yml";
  workflow.jobs.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Job& job = workflow.jobs[i];
    job.id = "j" + std::to_string(i);
    for (std::size_t k = 0; k < fan_in && k < i; ++k) {
      std::string need = "j" + std::to_string(std::uniform_int_distribution<std::size_t>(0, i - 1)(rng));
      if (std::find(job.needs.begin(), job.needs.end(), need) == job.needs.end())
        job.needs.push_back(std::move(need));
    }
  }
  return workflow;
}

// One job with a rows x cols matrix, and one job that needs all of it.
Workflow big_matrix(std::size_t rows, std::size_t cols) {
  Workflow workflow;
  workflow.file = "bench.yml";
  Job build;
  build.id = "build";
  build.strategy.emplace();
  std::vector<nlohmann::json> a, b;
  for (std::size_t i = 0; i < rows; ++i) a.push_back("os" + std::to_string(i));
  for (std::size_t i = 0; i < cols; ++i) b.push_back(i);
  build.strategy->matrix.dimensions = {{"os", a}, {"n", b}};
  build.strategy->fail_fast = false;
  Job after;
  after.id = "after";
  after.needs = {"build"};
  workflow.jobs = {build, after};
  return workflow;
}

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Wall time of f in ms; its CPU time goes to *cpu (the machine may be shared:
// CPU time shows the work, wall time what a user would wait).
template <class F>
double time_ms(F&& f, double* cpu) {
  const double cpu_start = cpu_ms();
  auto start = std::chrono::steady_clock::now();
  f();
  *cpu = cpu_ms() - cpu_start;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

Figures measure(const std::function<Workflow()>& make, std::size_t max_matrix) {
  Figures figures;
  Workflow workflow;
  figures.build_ms = time_ms([&] { workflow = make(); }, &figures.build_cpu);
  figures.rss_workflow = vm_hwm_mib();

  PlanOptions options;
  options.matrix.max_jobs = max_matrix;
  std::optional<Plan> plan;
  figures.plan_ms = time_ms([&] {
    auto built = Plan::build(workflow, options);
    if (built) plan.emplace(std::move(*built));
  }, &figures.plan_cpu);
  if (!plan) return figures;
  figures.rss_plan = vm_hwm_mib();
  figures.jobs = plan->size();
  for (std::size_t i = 0; i < plan->size(); ++i) figures.edges += plan->needs(i).size();

  NoopRunner runner;
  SteadyClock clock;
  RunReport report;
  figures.run_ms = time_ms([&] {
    Executor executor(*plan, runner, clock, {.capacity = 64, .context = {}, .matrix = {}, .matrix_filters = {}});
    report = executor.run();
  }, &figures.run_cpu);
  figures.rss_run = vm_hwm_mib();
  figures.ok = report.result == Result::success;
  return figures;
}

// Runs one case in a child process and prints its figures.
void run_case(const std::string& label, const std::function<Workflow()>& make,
              std::size_t max_matrix) {
  int fds[2];
  if (pipe(fds) != 0) return;
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Figures figures = measure(make, max_matrix);
    if (write(fds[1], &figures, sizeof figures) != sizeof figures) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  Figures figures;
  bool got = read(fds[0], &figures, sizeof figures) == sizeof figures;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!got || !figures.ok) {
    std::printf("%-12s FAILED\n", label.c_str());
    return;
  }
  std::printf("%-12s %8zu %8zu %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8.1f %8.1f %8.1f\n",
              label.c_str(), figures.jobs, figures.edges, figures.build_ms, figures.plan_ms,
              figures.run_ms, figures.plan_ms + figures.run_ms, figures.plan_cpu, figures.run_cpu,
              figures.rss_workflow, figures.rss_plan, figures.rss_run);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {10'000, 100'000, 1'000'000};
  bool matrices = true;
  if (argc > 1) {
    sizes = {static_cast<std::size_t>(std::strtoull(argv[1], nullptr, 10))};
    matrices = false;
  }
  std::printf("%-12s %8s %8s %9s %9s %9s %9s %9s %9s %8s %8s %8s\n", "case", "jobs", "edges",
              "build_ms", "plan_ms", "run_ms", "plan+run", "plan_cpu", "run_cpu", "rss_wf",
              "rss_plan", "rss_run");
  for (std::size_t n : sizes)
    run_case("dag " + std::to_string(n / 1000) + "k", [n] { return random_dag(n, 3, 42); }, 256);
  if (matrices) {
    run_case("matrix 10k", [] { return big_matrix(100, 100); }, 100'000);
    run_case("matrix 100k", [] { return big_matrix(100, 1000); }, 100'000);
  }
  std::printf(
      "build: constructing the Workflow in memory (what the loader would produce); plan: "
      "Plan::build\n(expansion, Kahn's, levels, critical path); run: Executor with a no-op runner, "
      "capacity 64.\n*_ms: wall time; *_cpu: CPU time in ms; rss_*: VmHWM (peak RSS, MiB) of the case's own\n"
      "process after each phase.\n");
  return 0;
}
