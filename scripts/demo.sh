#!/usr/bin/env bash
set -euo pipefail
BUILD_DIR=${1:-build}
"$BUILD_DIR/sandci" --version
