#!/usr/bin/env bash
# Prepares what the integration tests need beyond packages (idempotent).
# Usage: test-setup.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=${1:-$here/../build}
# The sandbox tests run their jobs in a small Debian rootfs (built once, ~1 min).
bash "$here/ensure-test-rootfs.sh"
# The image-store and `sandci run` tests share one default image (debian:12),
# built once per machine by the product itself.
"$build_dir/sandci" image build-default --state-dir /var/cache/sandci/image-test-state
# One test runs an ubuntu-latest workflow in the runner image (compilers, cmake,
# Python, Node.js, sudo: ~800 MB, a few minutes once). It lives in a state folder of
# its own so that the other tests' ubuntu-latest jobs keep the small image.
"$build_dir/sandci" image build-default --preset runner --state-dir /var/cache/sandci/runner-test-state

# promtool checks the agent's /metrics in a test. Only the tool is taken out of
# Debian's prometheus package: installing the package would also start a server.
promtool=/var/cache/sandci/tools/promtool
if [ ! -x "$promtool" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q prometheus; })
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  install -D -m 755 "$tmp/x/usr/bin/promtool" "$promtool"
  rm -rf "$tmp"
fi

echo "test-setup: ready"
