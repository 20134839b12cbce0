#!/usr/bin/env bash
# Prepares what the integration tests need beyond packages (idempotent).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The sandbox tests run their jobs in a small Debian rootfs (built once, ~1 min).
bash "$here/ensure-test-rootfs.sh"
echo "test-setup: ready"
