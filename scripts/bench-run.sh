#!/usr/bin/env bash
# `sandci run` end to end, in one run: the wall time of a 4-job diamond of trivial
# steps and of the c-hello example pipeline, beside the physical limit
# (critical-path length x per-job sandbox overhead, measured here too), and a
# trivial job against the sandbox benchmark's floor (create + exec true + destroy
# of the same image, bench_sandbox_bench --floor), with its CPU seconds.
# Usage: bench-run.sh [BUILD_DIR] [REPEATS]   (needs the images of `make demo`)
#   SANDCI_BENCH_IMAGES=DIR     images folder (default /var/lib/sandci/images)
#   SANDCI_BENCH_BEFORE=BINARY  another sandci (an older build): its trivial job
#                               is measured in the same loop, side by side
# c-hello runs only when its debian-build:12 image is there.
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
with_example=0
if [ -d "$images/debian-build%3A12" ]; then with_example=1; fi
cp -a "$top/examples/c-hello/." "$work/c-hello/" 2>/dev/null || { mkdir -p "$work/c-hello" && cp -a "$top/examples/c-hello/." "$work/c-hello/"; }
git -C "$work/c-hello" init -q -b main && git -C "$work/c-hello" add -A
git -C "$work/c-hello" -c user.name=b -c user.email=b@b.invalid commit -q -m bench

# Wall seconds of one `sandci run` (binary $2, default $sandci); the job
# durations and --timings table go to $work/last.out, the CPU seconds of the
# whole process tree (user + system, runsc and the sandbox included: they are
# waited-for descendants) to $work/last.cpu.
run_once() {
  local start end bin=${2:-$sandci} timings=--timings
  [ "$bin" = "$sandci" ] || timings=
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/last.time" \
    "$bin" run "$1" --plain $timings --state-dir "$work/state" --logs "$work/logs" > "$work/last.out" 2>&1 \
    || { cat "$work/last.out" >&2; exit 1; }
  end=$(date +%s.%N)
  awk '{print $1 + $2}' "$work/last.time" > "$work/last.cpu"
  calc "$end - $start"
}
calc() { awk "BEGIN { print $* }"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$sandci" run "$work/one" --plain --state-dir "$work/state" > /dev/null  # warm the mirror cache
before=${SANDCI_BENCH_BEFORE:-}
[ -z "$before" ] || "$before" run "$work/one" --plain --state-dir "$work/state" > /dev/null
declare -a one diamond example job cpu b_one b_job b_cpu
for i in $(seq 1 "$repeats"); do
  one+=("$(run_once "$work/one")")
  cpu+=("$(cat "$work/last.cpu")")
  # A trivial job's own duration (sandbox start, one step, teardown), from the
  # --timings table (ms precision; the summary line rounds to 0.1 s).
  job+=("$(awk '$1 == "only" && $2 ~ /^[0-9.]+$/ {print $2}' "$work/last.out")")
  if [ "$i" = 1 ]; then sed -n '/^timings/,/^logs:/p' "$work/last.out" | sed '$d' > "$work/timings.txt"; fi
  if [ -n "$before" ]; then
    b_one+=("$(run_once "$work/one" "$before")")
    b_cpu+=("$(cat "$work/last.cpu")")
    b_job+=("$(sed -n 's/^\[only\] success (\([0-9.]*\)s)$/\1/p' "$work/last.out")")
  fi
  diamond+=("$(run_once "$work/diamond")")
  if [ "$with_example" = 1 ]; then example+=("$(run_once "$work/c-hello")"); fi
done
# The floor: the sandbox benchmark's job on the same image, right after.
floor_out=$("$build_dir/tests/bench_sandbox_bench" --floor --jobs $((repeats * 4)) --rootfs "$images/debian%3A12/rootfs")
floor=$(printf '%s\n' "$floor_out" | sed -n 's/^sandci job: create .* p50 *\([0-9.]*\) s.*/\1/p')
one_m=$(printf '%s\n' "${one[@]}" | median)
job_m=$(printf '%s\n' "${job[@]}" | median)
dia_m=$(printf '%s\n' "${diamond[@]}" | median)
cpu_m=$(printf '%s\n' "${cpu[@]}" | median)
fixed=$(calc "$one_m - $job_m")           # checkout, loading, start-up: once per run
limit=$(calc "$fixed + 3 * $job_m")        # the diamond's critical path is 3 jobs long
ex_limit=$(calc "$fixed + 4 * $job_m")     # c-hello's: version, build, test, report
printf 'medians of %d runs on %d cores, load average %s\n' "$repeats" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
printf '  one trivial job, whole run     %6.2f s  (job itself %.3f s, fixed per run %.2f s), CPU %.2f s per run\n' \
  "$one_m" "$job_m" "$fixed" "$cpu_m"
printf '  sandbox floor (create + exec true + destroy, p50)  %.3f s: trivial job / floor = %.2f (target <= 1.2)\n' \
  "$floor" "$(calc "$job_m / $floor")"
if [ -n "$before" ]; then
  b_one_m=$(printf '%s\n' "${b_one[@]}" | median)
  b_job_m=$(printf '%s\n' "${b_job[@]}" | median)
  b_cpu_m=$(printf '%s\n' "${b_cpu[@]}" | median)
  printf '  before (%s): whole run %.2f s, job itself %.1f s (0.1 s steps), CPU %.2f s per run\n' \
    "$before" "$b_one_m" "$b_job_m" "$b_cpu_m"
fi
printf '  4-job diamond                  %6.2f s  limit %.2f s  ratio %.2f\n' "$dia_m" "$limit" "$(calc "$dia_m / $limit")"
if [ "$with_example" = 1 ]; then
  ex_m=$(printf '%s\n' "${example[@]}" | median)
  printf '  c-hello pipeline (7 jobs)      %6.2f s  limit %.2f s  ratio %.2f (its steps do real work)\n' "$ex_m" "$ex_limit" "$(calc "$ex_m / $ex_limit")"
else
  printf '  c-hello pipeline: not run (no debian-build:12 image in %s)\n' "$images"
fi
printf '%s\n' "$floor_out" | sed -n 's/^  phases/  floor phases/p'
echo "a trivial job's phases (sandci run --timings, first repeat):"
sed 's/^/  /' "$work/timings.txt"
