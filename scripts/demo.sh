#!/usr/bin/env bash
# `make demo`: runs examples/c-hello's pipeline, every job in a gVisor sandbox.
# Builds the two job images it needs once (debootstrap; a few minutes the first
# time), then runs the example as a fresh git repository, as a user would.
# Usage: demo.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build_dir=$(cd "${1:-$top/build}" && pwd)
shift || true  # the rest goes to `sandci run` (e.g. --plain)
sandci="$build_dir/sandci"

"$sandci" --version
# The default job image, and the one with a C compiler that c-hello's build job names.
"$sandci" image build-default
"$sandci" image build-default --name debian-build:12 --include gcc,make,libc6-dev

# In a git checkout of sandci, the example runs exactly as a user types it: a
# project folder inside a larger repository, its committed content at HEAD.
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
   [ -n "$(git -C "$top" ls-files examples/c-hello/.sandci)" ]; then
  echo
  echo "\$ sandci run examples/c-hello"
  cd "$top"
  exec "$sandci" run examples/c-hello "$@"
fi

# Elsewhere (an unpacked tarball): the example becomes a repository of its own.
repo=$(mktemp -d /tmp/sandci-demo.XXXXXX)
trap 'rm -rf "$repo"' EXIT
cp -a "$top/examples/c-hello/." "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=sandci-demo -c user.email=demo@sandci.invalid commit -q -m "c-hello"

echo
echo "\$ sandci run $repo"
"$sandci" run "$repo" "$@"
