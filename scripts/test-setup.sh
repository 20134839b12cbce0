#!/usr/bin/env bash
# Prepares what the integration tests need beyond packages (idempotent).
set -euo pipefail
echo "test-setup: nothing extra needed yet"
