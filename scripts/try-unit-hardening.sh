#!/usr/bin/env bash
# Tries the sandboxing directives of systemd/sandci-agent.service on a real job: a
# one-job workflow run by the real `sandci run`, in a real gVisor (runsc) sandbox,
# once per directive, under the same kernel mechanism systemd would use (mount
# namespace with read-only or private mounts, capability bounding set, no_new_privs,
# seccomp filters, UTS namespace). For machines whose PID 1 is not systemd, where
# `systemd-run -p Directive=...` cannot be used; with systemd as PID 1, prefer
#   systemd-run --wait --pipe -p ProtectSystem=strict ... sandci run DIR
# Prints one line per trial: ok or BREAKS, and why. docs/operations.md records
# the results ("Hardening the unit").
#
# Usage (as root): scripts/try-unit-hardening.sh [SANDCI_BINARY] [TRIAL_NAME...]
# The job image comes from $SANDCI_TEST_IMAGES (default: the test images of
# scripts/test-setup.sh). Needs gcc and libseccomp-dev for the seccomp trials.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sandci=$(realpath "${1:-$here/../build/sandci}")
shift || true
only=("$@")
images=$(realpath "${SANDCI_TEST_IMAGES:-/var/cache/sandci/image-test-state/images}")
# The job images are shared with the tests and linked into the state dir; under
# ProtectSystem=strict the state dir (with its images) is writable, so they are too.
[ "$(id -u)" = 0 ] || { echo "run as root (runsc needs it)" >&2; exit 2; }
[ -x "$sandci" ] || { echo "no sandci binary at $sandci" >&2; exit 2; }
[ -d "$images" ] || { echo "no job images at $images (scripts/test-setup.sh)" >&2; exit 2; }

# Like StateDirectory=: a folder under /var/lib that the unit may write.
work=$(mktemp -d /var/lib/sandci-hardening.XXXXXX)
cleanup() {
  # Sandboxes of a trial that broke half-way: runsc's own state under the work dir.
  if [ -d "$work/state/sandbox/runsc" ]; then
    runsc --root="$work/state/sandbox/runsc" list -quiet 2>/dev/null |
      while read -r id; do runsc --root="$work/state/sandbox/runsc" delete -force "$id" >/dev/null 2>&1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/state" "$work/repo/.github/workflows"
ln -s "$images" "$work/state/images"
cat > "$work/repo/.github/workflows/ci.yml" <<'YAML'
name: hardening
on: push
jobs:
  probe:
    runs-on: linux
    steps:
      - run: echo "job-ran-in-$(uname -s)"; test -w "$GITHUB_WORKSPACE" && echo workspace-writable
YAML
git -C "$work/repo" init -q -b main
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=probe -c user.email=probe@example.invalid commit -q -m probe

seccomp_exec=$work/seccomp-exec
if ! gcc -O2 -o "$seccomp_exec" "$here/seccomp-exec.c" -lseccomp 2>"$work/gcc.log"; then
  echo "note: seccomp trials skipped (gcc or libseccomp-dev missing: $(head -1 "$work/gcc.log"))"
  seccomp_exec=
fi

# Mount set-ups, run inside `unshare -m` before the job (one shell snippet each).
# Read-only: every mount below $1 (or all but the API file systems for "/").
ro_tree='ro_tree() { findmnt -rno TARGET | while read -r m; do
    m=$(printf "%b" "$m")
    case "$1" in /) case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac;;
                 *) case "$m" in "$1"|"$1"/*) ;; *) continue;; esac;; esac
    mount -o remount,bind,ro "$m" 2>/dev/null || true; done; }'
# ReadWritePaths=: a path made writable again inside a read-only tree.
rw_path='rw_path() { mount --bind "$1" "$1" && mount -o remount,bind,rw "$1"; }'
# A private writable tmpfs (PrivateTmp=), an empty inaccessible one (ProtectHome=yes).
private_tmp='mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp'
inaccessible='inaccessible() { [ -e "$1" ] && mount -t tmpfs -o ro,mode=000 tmpfs "$1"; return 0; }'
ro_bind='ro_bind() { [ -e "$1" ] || return 0; mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"; }'
mask_file='mask_file() { [ -e "$1" ] && mount --bind /dev/null "$1"; return 0; }'

# Runs the job with the wrappers given (a command prefix); prints ok or BREAKS.
pass=0; fail=0
trial() {
  local name=$1 directive=$2; shift 2
  if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx "$name"; then return; fi
  rm -rf "$work/state/runs" "$work/out.log"
  local started=$SECONDS
  "$@" "$sandci" run "$work/repo" --state-dir "$work/state" --plain >"$work/out.log" 2>&1
  local rc=$?
  if [ $rc = 0 ] && grep -q "job-ran-in-Linux" "$work/out.log" && grep -q workspace-writable "$work/out.log"; then
    printf '%-28s %-52s ok (%ss)\n' "$name" "$directive" $((SECONDS - started)); pass=$((pass + 1))
  else
    local why
    why=$(grep -iE "error|denied|not permitted|failed|read-only|cannot" "$work/out.log" | head -2 | tr '\n' ' ' | cut -c1-220)
    printf '%-28s %-52s BREAKS (exit %s): %s\n' "$name" "$directive" "$rc" "${why:-$(tail -1 "$work/out.log")}"
    fail=$((fail + 1))
    [ -n "${VERBOSE:-}" ] && sed 's/^/    /' "$work/out.log"
  fi
}

# Runs the job in a new mount namespace after the set-up snippet $1 (as systemd
# does: mounts first, then capabilities and seccomp, then exec).
mns() {
  local setup=$1; shift
  unshare -m --propagation private -- bash -c "set -e; $ro_tree; $rw_path; $inaccessible; $ro_bind; $mask_file; $setup; exec \"\$@\"" _ "$@"
}

# Capabilities: drops one from the bounding set (CapabilityBoundingSet=~CAP_X), as
# systemd does before exec; root's effective set follows the bounding set.
drop_cap() { setpriv --bounding-set "-$1" --inh-caps "-$1" -- "${@:2}"; }
keep_caps() { setpriv --bounding-set "-all,$1" --inh-caps "-all" -- "${@:2}"; }

echo "sandci: $("$sandci" --version 2>&1 | head -1); runsc: $(runsc --version 2>&1 | head -1); kernel: $(uname -r)"
echo "job: a one-job workflow by \`sandci run\` in a runsc sandbox; work dir $work"
echo

trial baseline "(nothing)" env
trial NoNewPrivileges "NoNewPrivileges=yes" setpriv --no-new-privs --
trial ProtectSystem-full "ProtectSystem=full" mns 'ro_bind /usr; ro_bind /boot; ro_bind /efi; ro_bind /etc'
trial ProtectSystem-strict "ProtectSystem=strict + StateDirectory + PrivateTmp" \
  mns "ro_tree /; rw_path $work; rw_path $images; $private_tmp"
trial ProtectSystem-strict-noRW "ProtectSystem=strict, no ReadWritePaths" mns "ro_tree /; $private_tmp"
trial PrivateTmp "PrivateTmp=yes" mns "$private_tmp"
trial ProtectHome-yes "ProtectHome=yes" mns 'inaccessible /home; inaccessible /root; inaccessible /run/user'
trial ProtectHome-read-only "ProtectHome=read-only" mns 'ro_bind /home; ro_bind /root; ro_bind /run/user'
# As systemd's namespace.c does: /sys read-only, its cgroup tree left as it is
# (that one is ProtectControlGroups=), and the tunables of /proc read-only.
sys_ro_but_cgroup='findmnt -rno TARGET | grep -E "^/sys(/|$)" | grep -vE "^/sys/fs/cgroup(/|$)" |
    while read -r m; do mount -o remount,bind,ro "$m" 2>/dev/null || true; done'
trial ProtectKernelTunables "ProtectKernelTunables=yes" \
  mns "for p in /proc/sys /proc/sysrq-trigger /proc/latency_stats /proc/acpi /proc/timer_stats /proc/asound /proc/bus /proc/fs /proc/irq /proc/scsi /proc/mtrr; do ro_bind \$p; done; $sys_ro_but_cgroup"
trial ProtectControlGroups "ProtectControlGroups=yes" mns 'ro_tree /sys/fs/cgroup'
trial ProtectKernelModules "ProtectKernelModules=yes" \
  mns 'inaccessible /usr/lib/modules; inaccessible /lib/modules' setpriv --bounding-set -sys_module --
trial ProtectKernelLogs "ProtectKernelLogs=yes" mns 'mask_file /proc/kmsg; mask_file /dev/kmsg' \
  setpriv --bounding-set -syslog --
trial ProtectClock "ProtectClock=yes" setpriv --bounding-set -sys_time,-wake_alarm --
trial ProtectHostname "ProtectHostname=yes" unshare -u --
trial PrivateDevices "PrivateDevices=yes" mns \
  'mkdir -p /run/pd && mount -t tmpfs -o mode=755,nosuid tmpfs /run/pd && for d in null zero full random urandom tty ptmx; do touch /run/pd/$d; mount --bind /dev/$d /run/pd/$d; done; mkdir /run/pd/pts /run/pd/shm /run/pd/mqueue; mount --bind /dev/pts /run/pd/pts; mount --bind /dev/shm /run/pd/shm; mount --move /run/pd /dev' \
  setpriv --bounding-set -mknod,-sys_rawio --
trial PrivateMounts "PrivateMounts=yes" mns ':'
trial ProtectProc "ProtectProc=invisible" mns 'mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc'
trial ProcSubset "ProcSubset=pid" mns 'mount -t proc -o subset=pid,nosuid,nodev,noexec proc /proc'

# Capabilities: first every capability outside `kept` dropped at once (one trial
# proves them all unneeded), then each kept one dropped alone (CAPS_ALL=1: every
# capability of this kernel alone), to show why it is kept.
kept=${KEPT_CAPS:-dac_override,setgid,setuid,setfcap,sys_admin}
trial keep-only-kept "CapabilityBoundingSet=<kept set>" keep_caps "$(echo "+$kept" | sed 's/,/,+/g')"
for cap in $(if [ -n "${CAPS_ALL:-}" ]; then setpriv --list-caps; else echo "$kept" | tr , ' '; fi); do
  trial "drop-$cap" "CapabilityBoundingSet=~CAP_${cap^^}" drop_cap "$cap"
done

if [ -n "$seccomp_exec" ]; then
  # The system calls of a systemd group, nested groups expanded.
  group() {
    systemd-analyze syscall-filter "$1" | tail -n +2 | grep -vE '^\s*(#|$)' | tr -d ' ' |
      while read -r n; do case $n in @*) group "$n" ;; *) echo "$n" ;; esac; done | paste -sd, -
  }
  for g in @clock @cpu-emulation @debug @module @mount @obsolete @privileged @raw-io @reboot @resources @swap; do
    trial "filter-~$g" "SystemCallFilter=~$g" "$seccomp_exec" --deny "$(group "$g")" --
  done
  trial SystemCallArchitectures "SystemCallArchitectures=native" "$seccomp_exec" --
  for ns in cgroup:02000000 ipc:08000000 net:40000000 mnt:00020000 pid:20000000 user:10000000 uts:04000000; do
    trial "RestrictNamespaces-~${ns%%:*}" "RestrictNamespaces=~${ns%%:*}" "$seccomp_exec" --deny-ns "${ns#*:}" --
  done
  trial RestrictNamespaces-user-cgroup "RestrictNamespaces=~user cgroup" "$seccomp_exec" --deny-ns 12000000 --
  trial RestrictAddressFamilies "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" \
    "$seccomp_exec" --allow-af 1,2,10,16 --
  trial RestrictAddressFamilies-nonetlink "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
    "$seccomp_exec" --allow-af 1,2,10 --
  trial MemoryDenyWriteExecute "MemoryDenyWriteExecute=yes" "$seccomp_exec" --mdwe --
  trial LockPersonality "LockPersonality=yes" "$seccomp_exec" --lock-personality --
  trial RestrictRealtime "RestrictRealtime=yes" "$seccomp_exec" --no-realtime --
  trial RestrictSUIDSGID "RestrictSUIDSGID=yes" "$seccomp_exec" --no-suid --
fi

# Everything systemd/sandci-agent.service keeps, together, in the order systemd
# applies it: mounts, UTS namespace, no_new_privs and capabilities, seccomp.
if [ -n "$seccomp_exec" ]; then
  unit_filter=$(for g in @clock @cpu-emulation @module @obsolete @raw-io @reboot @resources @swap; do group $g; done | paste -sd, -)
  trial unit-as-written "all the directives the unit keeps, at once" \
    mns "umask 077; mount -t proc -o hidepid=invisible,nosuid,nodev,noexec proc /proc;
         ro_tree /; rw_path $work; rw_path $images; $private_tmp; inaccessible /home; inaccessible /root; inaccessible /run/user;
         for p in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus /proc/fs; do ro_bind \$p; done; $sys_ro_but_cgroup;
         mask_file /proc/kmsg; mask_file /dev/kmsg; inaccessible /usr/lib/modules; inaccessible /lib/modules" \
    unshare -u -- setpriv --no-new-privs --bounding-set "$(echo "-all,+$kept" | sed 's/,\([a-z]\)/,+\1/g; s/+-all/-all/')" \
      --inh-caps -all -- \
    "$seccomp_exec" --deny "$unit_filter" --deny-ns 02000000 --allow-af 1,2,10,16 --lock-personality --no-realtime --no-suid --
fi

echo
echo "$pass ok, $fail break"
