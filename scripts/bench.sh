#!/usr/bin/env bash
# Runs every benchmark binary and prints its figures (not part of `make test`).
set -euo pipefail
BUILD_DIR=${1:-build}
for b in "$BUILD_DIR"/tests/bench_*; do
  [ -x "$b" ] || continue
  echo "== $b"; "$b"
done
