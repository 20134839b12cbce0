// Workflow loading figures: a realistic file, a large one, hostile ones, and
// trigger globs. Run with `make bench` (or build/tests/bench_workflow_loader).
#include <benchmark/benchmark.h>

#include "scheduler/glob.h"
#include "scheduler/workflow_loader.h"

namespace {

using sandci::scheduler::Diagnostics;
using sandci::scheduler::parse_workflow;

// A typical CI file: five jobs, a matrix, artifacts, outputs, expressions.
std::string example_workflow() {
  return R"YAML(name: ci
on:
  push:
    branches: [main, 'release/**']
  pull_request:
env:
  LC_ALL: C.UTF-8
jobs:
  version:
    outputs:
      version: ${{ steps.describe.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: describe
        run: |
          echo "version=$(cat VERSION)" >> "$GITHUB_OUTPUT"
  lint:
    needs: version
    steps:
      - uses: actions/checkout@v4
      - run: ./scripts/lint.sh
  build:
    needs: version
    container: {image: debian-build:12}
    strategy:
      fail-fast: false
      matrix:
        opt: [O0, O2]
    env:
      VERSION: ${{ needs.version.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - run: make OPT=-${{ matrix.opt }} VERSION="$VERSION"
      - uses: actions/upload-artifact@v4
        with: {name: 'hello-${{ matrix.opt }}', path: build/}
  test:
    needs: [version, lint, build]
    strategy:
      matrix:
        opt: [O0, O2]
    steps:
      - uses: actions/download-artifact@v4
        with: {name: 'hello-${{ matrix.opt }}', path: build}
      - run: ./build/test_greet
  report:
    needs: [lint, build, test]
    if: always()
    steps:
      - run: echo "${{ needs.test.result }}"
)YAML";
}

std::string many_jobs(int n) {
  std::string yaml = "on: push\njobs:\n";
  for (int i = 0; i < n; ++i) {
    yaml += "  job" + std::to_string(i) + ":\n";
    if (i > 0) yaml += "    needs: [job" + std::to_string(i - 1) + "]\n";
    yaml += "    steps:\n      - uses: actions/checkout@v4\n      - run: make -C part" +
            std::to_string(i) + " ${{ github.sha }}\n";
  }
  return yaml;
}

std::string billion_laughs() {
  std::string yaml = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    yaml += std::string{c} + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) yaml += std::string{i ? ", *" : "*"} + static_cast<char>(c - 1);
    yaml += "]\n";
  }
  return yaml;
}

void run_parse(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    Diagnostics diagnostics;
    auto workflow = parse_workflow(text, "bench.yml", diagnostics);
    benchmark::DoNotOptimize(workflow);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}

void BM_ParseExampleWorkflow(benchmark::State& state) { run_parse(state, example_workflow()); }
void BM_Parse500Jobs(benchmark::State& state) { run_parse(state, many_jobs(500)); }
void BM_RejectBillionLaughs(benchmark::State& state) { run_parse(state, billion_laughs()); }
void BM_RejectDeepNesting(benchmark::State& state) {
  run_parse(state, "a: " + std::string(10'000, '[') + std::string(10'000, ']'));
}

void BM_GlobMatchPath(benchmark::State& state) {
  auto glob = sandci::scheduler::Glob::compile("src/**/*.cc");
  const std::string path = "src/scheduler/deep/folder/workflow_loader.cc";
  for (auto _ : state) benchmark::DoNotOptimize(glob->matches(path));
}

BENCHMARK(BM_ParseExampleWorkflow);
BENCHMARK(BM_Parse500Jobs);
BENCHMARK(BM_RejectBillionLaughs);
BENCHMARK(BM_RejectDeepNesting);
BENCHMARK(BM_GlobMatchPath);

}  // namespace

BENCHMARK_MAIN();
