#!/usr/bin/env bash
# Installs every Debian package sandci needs to build, test and run its demo.
# Idempotent: packages already present are skipped; safe to run on every `make`.
# Must run as root on Debian 12 (bookworm).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config git
  libgit2-dev libboost1.81-dev libssl-dev libyaml-cpp-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libsystemd-dev libcli11-dev libarchive-dev zlib1g-dev
)
# Runtime and test tools: debootstrap builds the default job image; skopeo copies
# images for `sandci image pull`; busybox-static makes tiny test images; git-daemon
# and lighttpd/fcgiwrap serve repositories on 127.0.0.1 in the git tests, which also
# start their own sshd (openssh-server) on a loopback port for the SSH key path.
# libseccomp-dev: scripts/try-unit-hardening.sh builds a small seccomp helper to try
# the unit's system call filters on a real job.
# docker.io (dockerd 20.10, API 1.41) backs the Docker sandbox backend; nothing
# starts it: the sandbox tests run a private dockerd of their own.
RUNTIME_PKGS=(chromium debootstrap skopeo busybox-static lighttpd fcgiwrap iproute2 procps psmisc
              openssh-server libseccomp-dev docker.io)

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
}

install_if_missing() {
  local todo
  todo=$(missing "$@")
  [ -z "$todo" ] && return 0
  apt_update_once
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $todo
}

# runsc: Debian 12's own build breaks ls/stat inside the sandbox, so take the
# bookworm-backports build. The mirror is read from the machine's own apt sources,
# never written here.
enable_backports() {
  local list=/etc/apt/sources.list.d/sandci-backports.sources
  [ -f "$list" ] && return 0
  local src=/etc/apt/sources.list.d/debian.sources uris signed
  if [ -f "$src" ]; then
    uris=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | grep -v security | head -n1)
    signed=$(sed -n 's/^Signed-By:[[:space:]]*//p' "$src" | head -n1)
  else
    uris=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    signed=/usr/share/keyrings/debian-archive-keyring.gpg
  fi
  [ -n "$uris" ] || { echo "install-deps: cannot find a Debian mirror in apt sources" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$uris" "${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}" > "$list"
  apt_updated=0
}

install_runsc() {
  local have
  have=$(dpkg-query -W -f='${Version}' runsc 2>/dev/null || true)
  case "$have" in
    *2024*|*2025*|*2026*) return 0 ;;
  esac
  enable_backports
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports runsc
}

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: run as root (it installs Debian packages)" >&2
  exit 1
fi
install_if_missing "${BUILD_PKGS[@]}"
install_if_missing "${RUNTIME_PKGS[@]}"
# JavaScript actions run on the host's node, copied into each sandbox: install
# Debian's nodejs only when no node is there (a newer one from elsewhere is kept).
if ! command -v node >/dev/null 2>&1 && ! command -v nodejs >/dev/null 2>&1; then
  install_if_missing nodejs
fi
if [ "${SANDCI_SKIP_RUNSC:-0}" != 1 ]; then install_runsc; fi
echo "install-deps: all packages present"
