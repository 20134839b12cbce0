#!/usr/bin/env bash
# `sandci run` end to end, in one run: the sandbox floor (the sandbox benchmark's
# create + exec true + destroy of the same image, bench_sandbox_bench --floor), a
# trivial job, a 4-job diamond of trivial steps and the c-hello example pipeline,
# and gitlab-ci-local (shell executor: no isolation at all) on the same diamond,
# each with wall and CPU seconds (user + system of the whole process tree) and
# the ratios that matter.
# Usage: bench-run.sh [BUILD_DIR] [REPEATS]   (needs the images of `make demo`)
#   SANDCI_BENCH_IMAGES=DIR     images folder (default /var/lib/sandci/images)
#   SANDCI_BENCH_BEFORE=BINARY  another sandci (an older build): its trivial job
#                               and diamond are measured in the same loop, side by side
#   SANDCI_BENCH_TOOLS=DIR      where gitlab-ci-local is installed if missing
#                               (default /var/cache/sandci/tools; npm registry, rsync from Debian)
# c-hello runs only when its debian-build:12 image is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build_dir=$(cd "${1:-$top/build}" && pwd)
repeats=${2:-5}
sandci="$build_dir/sandci"
images=${SANDCI_BENCH_IMAGES:-/var/lib/sandci/images}
tools=${SANDCI_BENCH_TOOLS:-/var/cache/sandci/tools}
[ -d "$images/debian%3A12" ] || { echo "bench-run: no debian:12 in $images (run make demo first)" >&2; exit 1; }

# gitlab-ci-local copies the project with rsync; its newest releases need a newer
# Node.js than Debian 12's, so the version is pinned (the one issue 12 measured).
glc="$tools/gitlab-ci-local/bin/gitlab-ci-local"
glc_version=4.60
ensure_gitlab_ci_local() {
  command -v rsync > /dev/null || apt-get install -y rsync > /dev/null || return 1
  [ -x "$glc" ] || npm install -g --prefix "$tools/gitlab-ci-local" "gitlab-ci-local@$glc_version" > /dev/null 2>&1
}
have_glc=1
ensure_gitlab_ci_local || { have_glc=0; echo "bench-run: gitlab-ci-local not available; its row is left out" >&2; }

work=$(mktemp -d /tmp/sandci-bench-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state" && ln -s "$images" "$work/state/images"

make_repo() {  # DIR FILE TEXT
  mkdir -p "$(dirname "$1/$2")"
  printf '%s\n' "$3" > "$1/$2"
  git -C "$1" init -q -b main && git -C "$1" add -A
  git -C "$1" -c user.name=b -c user.email=b@b.invalid commit -q -m bench
}
make_repo "$work/one" .sandci/workflows/ci.yml 'on: push
jobs:
  only: {runs-on: x, steps: [{run: "true"}]}'
# Two trivial jobs in a row: with warm sandboxes (--warm 1) the second one finds
# its sandbox started while the first ran.
make_repo "$work/two" .sandci/workflows/ci.yml 'on: push
jobs:
  first: {runs-on: x, steps: [{run: "true"}]}
  only: {runs-on: x, needs: first, steps: [{run: "true"}]}'
make_repo "$work/diamond" .sandci/workflows/ci.yml 'on: push
jobs:
  a: {runs-on: x, steps: [{run: "true"}]}
  b: {runs-on: x, needs: a, steps: [{run: "true"}]}
  c: {runs-on: x, needs: a, steps: [{run: "true"}]}
  d: {runs-on: x, needs: [b, c], steps: [{run: "true"}]}'
make_repo "$work/glc" .gitlab-ci.yml 'stages: [one, two, three]
a: {stage: one, script: ["true"]}
b: {stage: two, needs: [a], script: ["true"]}
c: {stage: two, needs: [a], script: ["true"]}
d: {stage: three, needs: [b, c], script: ["true"]}'
with_example=0
if [ -d "$images/debian-build%3A12" ]; then with_example=1; fi
mkdir -p "$work/c-hello" && cp -a "$top/examples/c-hello/." "$work/c-hello/"
git -C "$work/c-hello" init -q -b main && git -C "$work/c-hello" add -A
git -C "$work/c-hello" -c user.name=b -c user.email=b@b.invalid commit -q -m bench

calc() { awk "BEGIN { print $* }"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Wall seconds of one command; its CPU seconds (user + system of the whole
# process tree: runsc and the sandbox are waited-for descendants) go to
# $work/last.cpu, its output to $work/last.out.
timed() {
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/last.time" "$@" > "$work/last.out" 2>&1 \
    || { cat "$work/last.out" >&2; exit 1; }
  end=$(date +%s.%N)
  awk '{print $1 + $2}' "$work/last.time" > "$work/last.cpu"
  calc "$end - $start"
}
timings_flag() { "$1" run --help 2>&1 | grep -q -- --timings && echo --timings || true; }
run_once() {  # REPO [BINARY [MORE OPTIONS]]
  local repo=$1 bin=${2:-$sandci}
  shift; shift || true
  # shellcheck disable=SC2046
  timed "$bin" run "$repo" --plain $(timings_flag "$bin") --state-dir "$work/state" --logs "$work/logs" "$@"
}
warm=0
if "$sandci" run --help 2>&1 | grep -q -- --warm; then warm=1; fi
# Cold rows start every sandbox when its job starts (--warm 0; `sandci run`
# starts them ahead by default); warm rows use --warm 2 (the default).
cold=()
[ "$warm" = 0 ] || cold=(--warm 0)
before_cold=()
if [ -n "${SANDCI_BENCH_BEFORE:-}" ] && "$SANDCI_BENCH_BEFORE" run --help 2>&1 | grep -q -- --warm; then
  before_cold=(--warm 0)
fi
# A trivial job's own duration (until its end is reported), from the --timings
# table (ms precision), else the summary line (0.1 s).
job_seconds() {
  local t
  t=$(awk '$1 == "only" && $2 ~ /^[0-9.]+$/ {print $2}' "$work/last.out")
  [ -n "$t" ] || t=$(sed -n 's/^\[only\] success (\([0-9.]*\)s)$/\1/p' "$work/last.out")
  echo "$t"
}

"$sandci" run "$work/one" --plain --state-dir "$work/state" > /dev/null  # warm the mirror cache
before=${SANDCI_BENCH_BEFORE:-}
[ -z "$before" ] || "$before" run "$work/one" --plain --state-dir "$work/state" > /dev/null
[ "$have_glc" = 0 ] || (cd "$work/glc" && "$glc" > /dev/null 2>&1) || true  # its first run writes its cache
declare -a one job cpu dia dia_cpu ex w_job w_add w_dia w_dia_cpu b_one b_job b_cpu b_dia b_dia_cpu g_dia g_cpu
b_w_dia=() b_w_dia_cpu=() d_one=() d_cpu=() b_d_one=() b_d_cpu=()
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq 1 "$repeats"); do
  one+=("$(run_once "$work/one" "$sandci" "${cold[@]}")"); cpu+=("$(cat "$work/last.cpu")"); job+=("$(job_seconds)")
  if [ "$i" = 1 ]; then sed -n '/^timings/,/^logs:/p' "$work/last.out" | sed '$d' > "$work/timings.txt"; fi
  if [ -n "$before" ]; then
    b_one+=("$(run_once "$work/one" "$before" "${before_cold[@]}")"); b_cpu+=("$(cat "$work/last.cpu")")
    b_job+=("$(job_seconds)")
  fi
  dia+=("$(run_once "$work/diamond" "$sandci" "${cold[@]}")"); dia_cpu+=("$(cat "$work/last.cpu")")
  if [ -n "$before" ]; then
    b_dia+=("$(run_once "$work/diamond" "$before" "${before_cold[@]}")"); b_dia_cpu+=("$(cat "$work/last.cpu")")
    if [ "${#before_cold[@]}" != 0 ]; then
      b_w_dia+=("$(run_once "$work/diamond" "$before" --warm 2)"); b_w_dia_cpu+=("$(cat "$work/last.cpu")")
    fi
  fi
  if [ "$warm" = 1 ]; then
    # The whole run of one trivial job with the default --warm 2 (its sandbox may
    # start before the checkout is written), and the older build's beside it.
    d_one+=("$(run_once "$work/one" "$sandci" --warm 2)"); d_cpu+=("$(cat "$work/last.cpu")")
    if [ "${#before_cold[@]}" != 0 ]; then
      b_d_one+=("$(run_once "$work/one" "$before" --warm 2)"); b_d_cpu+=("$(cat "$work/last.cpu")")
    fi
    run_once "$work/two" "$sandci" --warm 2 > /dev/null; w_job+=("$(job_seconds)")
    # What the warm job added to its one step: its total minus the step (--timings).
    w_add+=("$(sed -n '/^timings/,/^logs:/p' "$work/last.out" | awk '$1 == "only" {print $2 - $9}')")
    if [ "$i" = 1 ]; then sed -n '/^timings/,/^logs:/p' "$work/last.out" | sed '$d' > "$work/warm-timings.txt"; fi
    w_dia+=("$(run_once "$work/diamond" "$sandci" --warm 2)"); w_dia_cpu+=("$(cat "$work/last.cpu")")
  fi
  if [ "$have_glc" = 1 ]; then
    g_dia+=("$(cd "$work/glc" && timed "$glc")"); g_cpu+=("$(cat "$work/last.cpu")")
  fi
  if [ "$with_example" = 1 ]; then ex+=("$(run_once "$work/c-hello")"); fi
done
# The floor: the sandbox benchmark's job on the same image, right after; its CPU
# per job is the benchmark's CPU over its jobs (3 warm-up jobs included).
floor_jobs=$((repeats * 4))
floor_wall=$(timed "$build_dir/tests/bench_sandbox_bench" --floor --jobs "$floor_jobs" --rootfs "$images/debian%3A12/rootfs")
floor_out=$(cat "$work/last.out")
floor=$(printf '%s\n' "$floor_out" | sed -n 's/^sandci job: create .* p50 *\([0-9.]*\) s.*/\1/p')
floor_cpu=$(calc "$(cat "$work/last.cpu") / ($floor_jobs + 3)")
# What a step's exec costs inside one sandbox, piece by piece (a step is one
# exec of bash, which runs the script in a subshell).
step_costs=$("$build_dir/tests/bench_sandbox_bench" --step-costs --jobs $((repeats * 5)) \
  --rootfs "$images/debian%3A12/rootfs" | sed -n '/^exec of/p')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
m() { printf '%s\n' "$@" | median; }
one_m=$(m "${one[@]}"); job_m=$(m "${job[@]}"); cpu_m=$(m "${cpu[@]}")
dia_m=$(m "${dia[@]}"); dia_cpu_m=$(m "${dia_cpu[@]}")
fixed=$(calc "$one_m - $job_m")  # checkout, loading, start-up: once per run

printf 'medians of %d runs on %d cores; load average %s at the start, %s at the end (floor: %s s of wall for %d jobs)\n' \
  "$repeats" "$(nproc)" "$load_start" "$load_end" "$floor_wall" "$floor_jobs"
printf '%-44s %8s %8s  %s\n' "" "wall s" "CPU s" "ratio"
printf '%-44s %8.3f %8.3f  %s\n' "sandbox floor (create + exec true + destroy)" "$floor" "$floor_cpu" "1.00"
printf '%-44s %8.3f %8s  %.2f x floor (target <= 1.2)\n' "trivial job, cold (the job itself)" "$job_m" "" \
  "$(calc "$job_m / $floor")"
printf '%-44s %8.3f %8.3f  fixed per run %.3f s\n' "trivial job, cold (whole sandci run)" "$one_m" "$cpu_m" "$fixed"
if [ -n "$before" ]; then
  printf '%-44s %8.3f %8.3f  job itself %.3f s, %.2f x floor\n' "  before: whole sandci run" "$(m "${b_one[@]}")" \
    "$(m "${b_cpu[@]}")" "$(m "${b_job[@]}")" "$(calc "$(m "${b_job[@]}") / $floor")"
fi
if [ "$warm" = 1 ]; then
  printf '%-44s %8.3f %8.3f\n' "trivial job, --warm 2 (whole sandci run)" "$(m "${d_one[@]}")" "$(m "${d_cpu[@]}")"
fi
if [ "${#b_d_one[@]}" != 0 ]; then
  printf '%-44s %8.3f %8.3f\n' "  before: whole sandci run, --warm 2" "$(m "${b_d_one[@]}")" "$(m "${b_d_cpu[@]}")"
fi
if [ "$warm" = 1 ]; then
  w_job_m=$(m "${w_job[@]}")
  printf '%-44s %8.3f %8s  %.2f x floor, %.3f s added over its step (median; target < 0.15)\n' \
    "trivial job, warm (the job itself, --warm 2)" "$w_job_m" "" "$(calc "$w_job_m / $floor")" \
    "$(m "${w_add[@]}")"
fi
printf '%-44s %8.3f %8.3f  %.2f x (3 jobs on its critical path) x floor; CPU %.3f s per job\n' \
  "4-job diamond, cold (--warm 0)" "$dia_m" "$dia_cpu_m" "$(calc "$dia_m / ($fixed + 3 * $floor)")" \
  "$(calc "$dia_cpu_m / 4")"
if [ -n "$before" ]; then
  printf '%-44s %8.3f %8.3f  CPU %.3f s per job\n' "  before: 4-job diamond" "$(m "${b_dia[@]}")" \
    "$(m "${b_dia_cpu[@]}")" "$(calc "$(m "${b_dia_cpu[@]}") / 4")"
fi
if [ "$warm" = 1 ]; then
  w_dia_m=$(m "${w_dia[@]}")
  printf '%-44s %8.3f %8.3f  CPU %.3f s per job\n' "4-job diamond, warm (--warm 2, the default)" "$w_dia_m" \
    "$(m "${w_dia_cpu[@]}")" "$(calc "$(m "${w_dia_cpu[@]}") / 4")"
fi
if [ "${#b_w_dia[@]}" != 0 ]; then
  printf '%-44s %8.3f %8.3f  CPU %.3f s per job\n' "  before: 4-job diamond, --warm 2" "$(m "${b_w_dia[@]}")" \
    "$(m "${b_w_dia_cpu[@]}")" "$(calc "$(m "${b_w_dia_cpu[@]}") / 4")"
fi
if [ "$have_glc" = 1 ]; then
  g_m=$(m "${g_dia[@]}")
  best=$dia_m
  [ "$warm" = 0 ] || best=$w_dia_m
  printf '%-44s %8.3f %8.3f  sandci diamond (default) / gitlab-ci-local = %.2f\n' \
    "gitlab-ci-local $glc_version, same diamond, shell" "$g_m" "$(m "${g_cpu[@]}")" "$(calc "$best / $g_m")"
fi
if [ "$with_example" = 1 ]; then
  printf '%-44s %8.3f %8s  (its steps do real work)\n' "c-hello pipeline (7 jobs)" "$(m "${ex[@]}")" ""
else
  printf 'c-hello pipeline: not run (no debian-build:12 image in %s)\n' "$images"
fi
printf '%s\n' "$floor_out" | sed -n 's/^  phases/floor phases/p'
echo "a step's exec in one sandbox, piece by piece (bench_sandbox_bench --step-costs, $((repeats * 5)) rounds):"
printf '%s\n' "$step_costs" | sed 's/^/  /'
echo "a trivial job's phases (sandci run --timings, first repeat):"
sed 's/^/  /' "$work/timings.txt"
if [ "$warm" = 1 ]; then
  echo "two jobs in a row with --warm 2 (the second, 'only', took a sandbox started while the first ran):"
  sed 's/^/  /' "$work/warm-timings.txt"
fi
