#!/usr/bin/env bash
# `sandci run` end to end, in one run: the wall time of a 4-job diamond of trivial
# steps and of the c-hello example pipeline, beside the physical limit
# (critical-path length x per-job sandbox overhead, measured here too).
# Usage: bench-run.sh [BUILD_DIR] [REPEATS]   (needs the images of `make demo`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build_dir=$(cd "${1:-$top/build}" && pwd)
repeats=${2:-5}
sandci="$build_dir/sandci"
images=${SANDCI_BENCH_IMAGES:-/var/lib/sandci/images}
[ -d "$images/debian%3A12" ] || { echo "bench-run: no debian:12 in $images (run make demo first)" >&2; exit 1; }

work=$(mktemp -d /tmp/sandci-bench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state" && ln -s "$images" "$work/state/images"

make_repo() {  # DIR WORKFLOW-TEXT
  mkdir -p "$1/.sandci/workflows"
  printf '%s\n' "$2" > "$1/.sandci/workflows/ci.yml"
  git -C "$1" init -q -b main && git -C "$1" add -A
  git -C "$1" -c user.name=b -c user.email=b@b.invalid commit -q -m bench
}
make_repo "$work/one" 'on: push
jobs:
  only: {runs-on: x, steps: [{run: "true"}]}'
make_repo "$work/diamond" 'on: push
jobs:
  a: {runs-on: x, steps: [{run: "true"}]}
  b: {runs-on: x, needs: a, steps: [{run: "true"}]}
  c: {runs-on: x, needs: a, steps: [{run: "true"}]}
  d: {runs-on: x, needs: [b, c], steps: [{run: "true"}]}'
cp -a "$top/examples/c-hello/." "$work/c-hello/" 2>/dev/null || { mkdir -p "$work/c-hello" && cp -a "$top/examples/c-hello/." "$work/c-hello/"; }
git -C "$work/c-hello" init -q -b main && git -C "$work/c-hello" add -A
git -C "$work/c-hello" -c user.name=b -c user.email=b@b.invalid commit -q -m bench

# Wall seconds of one `sandci run`; the job durations go to $work/last.out.
run_once() {
  local start end
  start=$(date +%s.%N)
  "$sandci" run "$1" --plain --state-dir "$work/state" --logs "$work/logs" > "$work/last.out" 2>&1 \
    || { cat "$work/last.out" >&2; exit 1; }
  end=$(date +%s.%N)
  calc "$end - $start"
}
calc() { awk "BEGIN { print $* }"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$sandci" run "$work/one" --plain --state-dir "$work/state" > /dev/null  # warm the mirror cache
declare -a one diamond example job
for i in $(seq 1 "$repeats"); do
  one+=("$(run_once "$work/one")")
  # A trivial job's own duration (sandbox start, one step, teardown), as sandci reports it.
  job+=("$(sed -n 's/^\[only\] success (\([0-9.]*\)s)$/\1/p' "$work/last.out")")
  diamond+=("$(run_once "$work/diamond")")
  example+=("$(run_once "$work/c-hello")")
done
one_m=$(printf '%s\n' "${one[@]}" | median)
job_m=$(printf '%s\n' "${job[@]}" | median)
dia_m=$(printf '%s\n' "${diamond[@]}" | median)
ex_m=$(printf '%s\n' "${example[@]}" | median)
fixed=$(calc "$one_m - $job_m")           # checkout, loading, start-up: once per run
limit=$(calc "$fixed + 3 * $job_m")        # the diamond's critical path is 3 jobs long
ex_limit=$(calc "$fixed + 4 * $job_m")     # c-hello's: version, build, test, report
printf 'medians of %d runs on %d cores\n' "$repeats" "$(nproc)"
printf '  one trivial job, whole run     %6.2f s  (job itself %.2f s, fixed per run %.2f s)\n' "$one_m" "$job_m" "$fixed"
printf '  4-job diamond                  %6.2f s  limit %.2f s  ratio %.2f\n' "$dia_m" "$limit" "$(calc "$dia_m / $limit")"
printf '  c-hello pipeline (7 jobs)      %6.2f s  limit %.2f s  ratio %.2f (its steps do real work)\n' "$ex_m" "$ex_limit" "$(calc "$ex_m / $ex_limit")"
