#!/usr/bin/env bash
# Runs every benchmark binary and prints its figures (not part of `make test`),
# then the whole agent's figures side by side in one table: scripts/bench-run.sh
# (per job, the diamond, c-hello, gitlab-ci-local), `docker run --rm
# --runtime=runsc` per job, and bench_whole_agent (webhook ingress, push to first
# job, 1/10/100 runs at once, a 1,000-job workflow), with the load average at the
# start and the end. docs/performance.md holds one such run.
#   SANDCI_BENCH_ONLY=NAME   only bench_NAME (or "run": only bench-run.sh; "whole": only the whole agent)
#   SANDCI_BENCH_WHOLE="ARGS" arguments for bench_whole_agent (default: its own)
#   SANDCI_BENCH_REPEATS=N    repeats of bench-run.sh and of `docker run` (default 5)
# If dockerd is installed (apt-get install docker.io; SANDCI_BENCH_DOCKER=1 makes
# this script install it), a private Docker daemon is started for the sandbox
# benchmark's docker+runsc comparison and stopped again at the end. It has no
# bridge and no iptables rules; its containers run with --network=none.
set -euo pipefail
BUILD_DIR=${1:-build}
ROOTFS=${SANDCI_TEST_ROOTFS:-/var/cache/sandci/rootfs-bookworm}

dockerd_pid=""
docker_dir=""
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  if [ -n "$docker_dir" ]; then
    umount -R "$docker_dir"/* 2>/dev/null || true
    rm -rf --one-file-system "$docker_dir"
  fi
}
trap cleanup EXIT

start_private_dockerd() {
  if ! command -v dockerd >/dev/null && [ "${SANDCI_BENCH_DOCKER:-0}" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  command -v dockerd >/dev/null || { echo "bench: dockerd not installed; docker+runsc not compared"; return 0; }
  [ -x "$ROOTFS/bin/sh" ] || { echo "bench: no rootfs at $ROOTFS; docker+runsc not compared"; return 0; }
  docker_dir=$(mktemp -d /tmp/sandci-bench-docker.XXXXXX)
  printf '{"runtimes":{"runsc":{"path":"%s","runtimeArgs":["--network=none"]}}}\n' "$(command -v runsc)" \
    > "$docker_dir/daemon.json"
  dockerd --host "unix://$docker_dir/docker.sock" --data-root "$docker_dir/data" --exec-root "$docker_dir/exec" \
    --pidfile "$docker_dir/pid" --bridge none --iptables=false --ip6tables=false \
    --config-file "$docker_dir/daemon.json" > "$docker_dir/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local host="unix://$docker_dir/docker.sock" i
  for i in $(seq 1 100); do
    docker -H "$host" version >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! docker -H "$host" version >/dev/null 2>&1; then
    echo "bench: private dockerd did not start:"; tail -n 5 "$docker_dir/dockerd.log"; return 0
  fi
  tar -C "$ROOTFS" -c . | docker -H "$host" import - sandci-bench:rootfs >/dev/null
  export SANDCI_BENCH_DOCKER_HOST="$host" SANDCI_BENCH_DOCKER_IMAGE=sandci-bench:rootfs
}

only=${SANDCI_BENCH_ONLY:-}
repeats=${SANDCI_BENCH_REPEATS:-5}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $load_start at the start"
if [ -z "$only" ] || [ "$only" = sandbox_bench ] || [ "$only" = whole ]; then start_private_dockerd; fi
for b in "$BUILD_DIR"/tests/bench_${only:-*}; do
  [ -x "$b" ] || continue
  # bench_whole_agent runs below, beside the other whole-agent figures;
  # bench_agent_bench is its older form (one connection per delivery, and its
  # second ingress queues thousands of runs), left out of the full run.
  case "$(basename "$b")" in bench_whole_agent|bench_agent_bench) [ -n "$only" ] || continue ;; esac
  echo "== $b"; "$b"
done
[ -z "$only" ] || [ "$only" = run ] || [ "$only" = whole ] || exit 0

summary=$(mktemp /tmp/sandci-bench-summary.XXXXXX)
trap 'rm -f "$summary" "$summary.run" "$summary.whole"; cleanup' EXIT
# sandci run end to end (needs the images `make demo` builds).
echo "== scripts/bench-run.sh $BUILD_DIR $repeats"
if bash "$(dirname "$0")/bench-run.sh" "$BUILD_DIR" "$repeats" | tee "$summary.run"; then :; else
  echo "bench: bench-run.sh skipped (run make demo first)"
fi
[ "$only" = run ] && exit 0

# `docker run --rm --runtime=runsc` per job, serially, on the private dockerd:
# what a user who runs each job in gVisor through Docker pays per job.
docker_row="docker run --rm --runtime=runsc: not measured (no private dockerd)"
if [ -n "${SANDCI_BENCH_DOCKER_HOST:-}" ]; then
  docker -H "$SANDCI_BENCH_DOCKER_HOST" run --rm --runtime=runsc --network=none "$SANDCI_BENCH_DOCKER_IMAGE" true \
    > /dev/null 2>&1 || true  # warm the image's layers
  times=()
  for _ in $(seq 1 "$repeats"); do
    t0=$(date +%s.%N)
    docker -H "$SANDCI_BENCH_DOCKER_HOST" run --rm --runtime=runsc --network=none "$SANDCI_BENCH_DOCKER_IMAGE" true \
      > /dev/null
    t1=$(date +%s.%N)
    times+=("$(awk "BEGIN { print $t1 - $t0 }")")
  done
  docker_med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  docker_row=$(printf '%-44s %8.3f' "docker run --rm --runtime=runsc true" "$docker_med")
  echo "== docker run --rm --runtime=runsc --network=none (median of $repeats): $docker_med s"
fi

echo "== $BUILD_DIR/tests/bench_whole_agent ${SANDCI_BENCH_WHOLE:-}"
# shellcheck disable=SC2086
"$BUILD_DIR/tests/bench_whole_agent" ${SANDCI_BENCH_WHOLE:-} | tee "$summary.whole" || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "== The whole agent, side by side (load average $load_start at the start, $load_end at the end)"
echo "per job and pipelines (scripts/bench-run.sh, medians of $repeats):"
sed -n '/wall s/,/^c-hello/p' "$summary.run" 2>/dev/null | sed 's/^/  /'
echo "per job, the peer (median of $repeats, same run):"
echo "  $docker_row"
echo "the agent (bench_whole_agent):"
sed -n 's/^ *RESULT /  /p' "$summary.whole"
rm -f "$summary.run" "$summary.whole"
