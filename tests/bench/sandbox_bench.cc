// Per-job overhead of the runsc backend (start a sandbox, run `true`, tear it
// down) against the alternatives: `runsc do true`, one plain `runsc run` per
// step, and, when scripts/bench.sh started a private dockerd, sandci's Docker
// backend (runtime runsc) and `docker run --rm --runtime=runsc` through the CLI. Prints p50/p95 over N jobs, one at a time and 4 at once.
//
//   bench_sandbox_bench [--jobs N] [--rootfs DIR] [--floor | --step-costs]
// --floor: only the serial sandci job row and its phases (scripts/bench-run.sh
// compares a whole `sandci run` job against it).
// --step-costs: what a step's exec costs inside one sandbox, piece by piece
// (N rounds, the variants alternated): `true` alone, `true` through bash (the
// program a bash step starts) and through a bash subshell (the fork sandci's
// step wrapper makes so the script cannot touch the hand-back of its files).
//   env SANDCI_BENCH_DOCKER_HOST=unix:///path/docker.sock SANDCI_BENCH_DOCKER_IMAGE=name:tag
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/docker_backend.h"
#include "sandbox/oci_spec.h"
#include "sandbox/process.h"
#include "sandbox/runsc_backend.h"

namespace {

using namespace sandci::sandbox;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Figures {
  std::vector<double> seconds;  // per job
  double wall = 0;
  int failures = 0;
  double pct(double p) const {
    if (seconds.empty()) return 0;
    auto s = seconds;
    std::sort(s.begin(), s.end());
    return s[std::min(s.size() - 1, static_cast<std::size_t>(p * (s.size() - 1) + 0.5))];
  }
};

// Runs `jobs` jobs with `parallel` workers; each job is timed on its own.
Figures measure(int jobs, int parallel, const std::function<bool()>& job) {
  Figures f;
  std::mutex mutex;
  std::atomic<int> next{0};
  auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < parallel; ++w) {
    workers.emplace_back([&] {
      while (next++ < jobs) {
        auto t0 = Clock::now();
        bool ok = job();
        double s = std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard lock(mutex);
        f.seconds.push_back(s);
        if (!ok) ++f.failures;
      }
    });
  }
  for (auto& t : workers) t.join();
  f.wall = std::chrono::duration<double>(Clock::now() - start).count();
  return f;
}

void print(const char* name, int parallel, const Figures& f) {
  std::printf("%-44s x%d  p50 %6.3f s  p95 %6.3f s  wall %6.2f s  %5.2f jobs/s%s\n", name, parallel, f.pct(0.5),
              f.pct(0.95), f.wall, f.seconds.size() / f.wall,
              f.failures ? ("  FAILURES: " + std::to_string(f.failures)).c_str() : "");
  std::fflush(stdout);
}

bool run_ok(const std::vector<std::string>& argv) {
  auto r = run_capture(argv);
  if (!r || !r->ok()) {
    std::fprintf(stderr, "failed: %s: %s\n", join_args(argv).c_str(), r ? r->describe().c_str() : r.error().c_str());
    return false;
  }
  return true;
}

// One sandbox, `rounds` rounds of each variant in turn (so load changes hit
// them alike); prints each variant's p50 and its cost over the bare exec.
bool measure_step_costs(SandboxBackend& backend, const SandboxSpec& spec, int rounds) {
  auto sandbox = backend.create(spec);
  if (!sandbox) {
    std::fprintf(stderr, "create: %s\n", sandbox.error().message.c_str());
    return false;
  }
  struct Variant {
    const char* name;
    std::vector<std::string> argv;
    Figures figures;
  };
  Variant variants[] = {
      {"exec of `true`", {"true"}, {}},
      {"exec of `bash -c true`", {"bash", "-c", "true"}, {}},
      {"exec of `bash -c '( true )'` (a subshell)", {"bash", "-c", "( true )"}, {}},
  };
  bool ok = true;
  for (int round = -2; round < rounds; ++round) {  // two rounds to warm up
    for (auto& variant : variants) {
      const auto t0 = Clock::now();
      ok = (*sandbox)->exec(ExecRequest{variant.argv, {}, "", {}}, [](const OutputLine&) {}).success() && ok;
      if (round >= 0) variant.figures.seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  const double bare = variants[0].figures.pct(0.5);
  for (const auto& variant : variants) {
    std::printf("%-46s p50 %6.3f s  p95 %6.3f s  +%.3f s over `true`\n", variant.name, variant.figures.pct(0.5),
                variant.figures.pct(0.95), variant.figures.pct(0.5) - bare);
  }
  sandbox->reset();
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 50;
  std::string rootfs = "/var/cache/sandci/rootfs-bookworm";
  bool floor_only = false;
  bool step_costs = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--floor") floor_only = true;
    if (a == "--step-costs") step_costs = true;
    if (a == "--jobs" && i + 1 < argc) jobs = std::atoi(argv[++i]);
    if (a == "--rootfs" && i + 1 < argc) rootfs = argv[++i];
  }
  if (!fs::exists(rootfs + "/bin/sh")) {
    std::fprintf(stderr, "no rootfs at %s (scripts/ensure-test-rootfs.sh builds it)\n", rootfs.c_str());
    return 1;
  }
  char tmpl[] = "/tmp/sandci-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  const std::string state = tmpl;
  RunscOptions options;
  options.state_dir = state + "/state";
  auto backend = RunscBackend::open(options);
  if (!backend) {
    std::fprintf(stderr, "%s\n", backend.error().message.c_str());
    return 1;
  }
  fs::create_directories(state + "/workspace");
  SandboxSpec spec;
  spec.rootfs = rootfs;
  spec.mounts.push_back(Mount{state + "/workspace", "/workspace", false});
  spec.name_hint = "bench";

  auto loadavg = [] {
    std::ifstream in("/proc/loadavg");
    std::string a;
    in >> a;
    return a;
  };
  // Figures on a shared 2-core machine swing with its load: print it.
  std::printf("runsc backend, %d jobs per row (%s), load average %s\n", jobs, rootfs.c_str(), loadavg().c_str());
  // Phases of one job, measured separately on the serial run.
  std::vector<double> t_create, t_exec, t_destroy;
  auto job_steps = [&](int steps, bool record) {
    return [&, steps, record] {
      auto t0 = Clock::now();
      auto sandbox = (*backend)->create(spec);
      if (!sandbox) {
        std::fprintf(stderr, "create: %s\n", sandbox.error().message.c_str());
        return false;
      }
      auto t1 = Clock::now();
      bool ok = true;
      for (int s = 0; s < steps; ++s) {
        ExecRequest request{{"true"}, {}, "", {}};
        ok = ok && (*sandbox)->exec(request, [](const OutputLine&) {}).success();
      }
      auto t2 = Clock::now();
      sandbox->reset();
      auto t3 = Clock::now();
      if (record) {
        t_create.push_back(std::chrono::duration<double>(t1 - t0).count());
        t_exec.push_back(std::chrono::duration<double>(t2 - t1).count());
        t_destroy.push_back(std::chrono::duration<double>(t3 - t2).count());
      }
      return ok;
    };
  };
  if (step_costs) {
    const bool measured = measure_step_costs(**backend, spec, jobs);
    backend->reset();
    fs::remove_all(state);
    return measured ? 0 : 1;
  }
  measure(3, 1, job_steps(1, false));  // warm the page cache
  Figures sandci1 = measure(jobs, 1, job_steps(1, true));
  print("sandci job: create + exec true + destroy", 1, sandci1);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  std::printf("  phases (p50): create %.3f s, exec %.3f s, destroy %.3f s\n", median(t_create), median(t_exec),
              median(t_destroy));
  if (floor_only) {
    backend->reset();
    fs::remove_all(state);
    return sandci1.failures ? 1 : 0;
  }
  Figures sandci4 = measure(jobs, 4, job_steps(1, false));
  print("sandci job: create + exec true + destroy", 4, sandci4);
  Figures sandci_5steps = measure(jobs / 2, 1, job_steps(5, false));
  print("sandci job of 5 steps (1 sandbox, 5 execs)", 1, sandci_5steps);

  // One fresh `runsc run` per step: the alternative to exec. (With an in-memory
  // overlay it is also wrong for real jobs: steps would not see each other's files.)
  const std::string bundle = state + "/bundle";
  fs::create_directories(bundle);
  std::atomic<int> run_counter{0};
  auto plain_run = [&](int steps) {
    return [&, steps] {
      bool ok = true;
      for (int s = 0; s < steps; ++s) {
        std::string id = "bench-run-" + std::to_string(::getpid()) + "-" + std::to_string(run_counter++);
        std::string dir = bundle + "/" + id;
        fs::create_directories(dir);
        auto config = make_config(spec, "/sandci-" + id);
        config["process"]["args"] = {"true"};
        std::ofstream(dir + "/config.json") << config.dump();
        ok = run_ok({"runsc", "--root=" + state + "/plain-root", "--network=none", "--overlay2=all:memory", "run",
                     "--bundle", dir, id}) && ok;
        fs::remove_all(dir);
      }
      return ok;
    };
  };
  Figures plain1 = measure(jobs, 1, plain_run(1));
  print("plain `runsc run` of `true` (1 step)", 1, plain1);
  Figures plain5 = measure(jobs / 2, 1, plain_run(5));
  print("plain `runsc run` per step (5 steps)", 1, plain5);

  Figures runsc_do = measure(jobs, 1, [&] {
    return run_ok({"runsc", "--root=" + state + "/do-root", "--network=none", "do", "true"});
  });
  print("`runsc do true`", 1, runsc_do);

  const char* docker_host = std::getenv("SANDCI_BENCH_DOCKER_HOST");
  const char* docker_image = std::getenv("SANDCI_BENCH_DOCKER_IMAGE");
  Figures docker1, docker4, backend1, backend4;
  std::string backend_error;
  if (docker_host && docker_image) {
    DockerOptions docker_options;
    docker_options.socket = std::string(docker_host).substr(std::string("unix://").size());
    docker_options.image = docker_image;
    auto docker_backend = DockerBackend::open(docker_options);
    if (docker_backend) {
      auto backend_job = [&] {
        auto sandbox = (*docker_backend)->create(spec);
        if (!sandbox) {
          std::fprintf(stderr, "docker backend create: %s\n", sandbox.error().message.c_str());
          return false;
        }
        ExecRequest request{{"true"}, {}, "", {}};
        bool ok = (*sandbox)->exec(request, [](const OutputLine&) {}).success();
        sandbox->reset();
        return ok;
      };
      measure(2, 1, backend_job);
      backend1 = measure(jobs, 1, backend_job);
      print("sandci Docker backend (runsc): create+exec+destroy", 1, backend1);
      backend4 = measure(jobs, 4, backend_job);
      print("sandci Docker backend (runsc): create+exec+destroy", 4, backend4);
    } else {
      backend_error = docker_backend.error().message;
      std::printf("sandci Docker backend: cannot open: %s\n", backend_error.c_str());
    }
    auto docker_job = [&] {
      return run_ok({"docker", "-H", docker_host, "run", "--rm", "--runtime=runsc", "--network=none", docker_image,
                     "true"});
    };
    measure(2, 1, docker_job);
    docker1 = measure(jobs, 1, docker_job);
    print("`docker run --rm --runtime=runsc --network=none`", 1, docker1);
    docker4 = measure(jobs, 4, docker_job);
    print("`docker run --rm --runtime=runsc --network=none`", 4, docker4);
  } else {
    std::printf("docker: not measured (scripts/bench.sh sets SANDCI_BENCH_DOCKER_HOST/IMAGE when dockerd exists)\n");
  }

  std::printf("\nsummary: sandci job p50 %.3f s (target <= 0.30 s): %s\n", sandci1.pct(0.5),
              sandci1.pct(0.5) <= 0.30 ? "met" : "NOT met");
  if (!docker1.seconds.empty()) {
    std::printf("summary: docker+runsc / sandci p50 = %.2fx serial, %.2fx with 4 at once (target >= 2x)\n",
                docker1.pct(0.5) / sandci1.pct(0.5), docker4.pct(0.5) / sandci4.pct(0.5));
  }
  if (!backend1.seconds.empty() && !docker1.seconds.empty()) {
    const double ratio = backend1.pct(0.5) / docker1.pct(0.5);
    std::printf("summary: Docker backend / `docker run` p50 = %.2fx serial (target <= 1.3x: %s), %.2fx with 4 at once\n",
                ratio, ratio <= 1.3 ? "met" : "NOT met", backend4.pct(0.5) / docker4.pct(0.5));
  }
  std::printf("summary: 5-step job: exec into one sandbox %.3f s vs one runsc run per step %.3f s (p50)\n",
              sandci_5steps.pct(0.5), plain5.pct(0.5));
  std::printf("load average at the end: %s\n", loadavg().c_str());
  backend->reset();
  fs::remove_all(state);
  return 0;
}
