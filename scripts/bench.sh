#!/usr/bin/env bash
# Runs every benchmark binary and prints its figures (not part of `make test`).
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

if [ -x "$BUILD_DIR/tests/bench_sandbox_bench" ]; then start_private_dockerd; fi
for b in "$BUILD_DIR"/tests/bench_${SANDCI_BENCH_ONLY:-*}; do
  [ -x "$b" ] || continue
  echo "== $b"; "$b"
done
# sandci run end to end (needs the images `make demo` builds).
if [ -z "${SANDCI_BENCH_ONLY:-}" ] || [ "${SANDCI_BENCH_ONLY}" = run ]; then
  echo "== scripts/bench-run.sh"
  bash "$(dirname "$0")/bench-run.sh" "$BUILD_DIR" || echo "bench: bench-run.sh skipped (run make demo first)"
fi
