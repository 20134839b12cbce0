#!/usr/bin/env bash
# Builds, once, the small Debian rootfs the sandbox tests run their jobs in.
# Idempotent: an existing rootfs is kept. Atomic: built in a temporary folder
# next to the target, then renamed, so a crash never leaves a half-built image
# at the path the tests look at. The mirror comes from the machine's own apt
# sources (never written here).
set -euo pipefail

TARGET=${SANDCI_TEST_ROOTFS:-/var/cache/sandci/rootfs-bookworm}
# Only what the tests use: procps for ps/pgrep, everything else is in minbase.
INCLUDE=procps

if [ -x "$TARGET/bin/bash" ] && [ -f "$TARGET/.sandci-complete" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-test-rootfs: run as root (debootstrap needs it)" >&2
  exit 1
fi

mirror() {
  local src=/etc/apt/sources.list.d/debian.sources uri=""
  if [ -f "$src" ]; then
    uri=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | tr ' ' '\n' | grep -v security | head -n1)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "ensure-test-rootfs: no Debian mirror in apt sources" >&2; exit 1; }
  echo "$uri"
}

parent=$(dirname "$TARGET")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.rootfs-build.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
echo "ensure-test-rootfs: building $TARGET (about a minute)"
debootstrap --variant=minbase --include="$INCLUDE" bookworm "$tmp/root" "$(mirror)" \
  > "$tmp/debootstrap.log" 2>&1 || { tail -n 30 "$tmp/debootstrap.log" >&2; exit 1; }
# Package caches are not needed to run jobs; they only make the image bigger.
rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
touch "$tmp/root/.sandci-complete"
if [ -f "$TARGET/.sandci-complete" ]; then
  echo "ensure-test-rootfs: another run finished first; keeping it"
  exit 0
fi
# A half-built leftover from before the atomic rename existed: replace it.
rm -rf --one-file-system "$TARGET"
mv -T "$tmp/root" "$TARGET"
echo "ensure-test-rootfs: ready at $TARGET"
