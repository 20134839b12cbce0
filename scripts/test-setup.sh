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
echo "test-setup: ready"
