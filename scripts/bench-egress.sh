#!/bin/bash
# Added job start-up time with egress on versus off, side by side in one run:
# the same one-step job run with `sandci run` N times without a grant (no
# network) and N times with one (`--allow-host`: the job's namespaces, veth and
# proxy are made and removed around its sandbox). Prints the median wall time
# of each and the difference. Needs root, runsc and the images of
# scripts/test-setup.sh. Usage: scripts/bench-egress.sh [N] [path/to/sandci]
set -euo pipefail
n=${1:-7}
sandci=${2:-build/sandci}
images=${SANDCI_TEST_IMAGES:-/var/cache/sandci/image-test-state/images}
work=$(mktemp -d /tmp/sandci-bench-egress-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/repo/.sandci/workflows" "$work/state"
ln -s "$images" "$work/state/images"
cat > "$work/repo/.sandci/workflows/ci.yml" <<'Y'
on: push
jobs:
  trivial:
    runs-on: ubuntu-latest
    steps:
      - run: true
Y
git -C "$work/repo" init -q && git -C "$work/repo" add -A &&
  git -C "$work/repo" -c user.name=b -c user.email=b@example.org commit -qm bench

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
once() {
  local start end
  start=$(date +%s.%N)
  "$sandci" run "$work/repo" --plain --state-dir "$work/state" "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
off=() on=()
for ((i = 0; i < n; i++)); do  # interleaved, so load changes hit both alike
  off+=("$(once)")
  on+=("$(once --allow-host files.example.org)")
done
m_off=$(printf '%s\n' "${off[@]}" | median)
m_on=$(printf '%s\n' "${on[@]}" | median)
printf 'runs: %d each, interleaved\n' "$n"
printf 'egress off (no network):   median %.3f s  (%s)\n' "$m_off" "${off[*]}"
printf 'egress on (--allow-host):  median %.3f s  (%s)\n' "$m_on" "${on[*]}"
printf 'added by egress:           %.3f s\n' "$(echo "$m_on - $m_off" | bc)"
