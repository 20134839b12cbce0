#!/usr/bin/env bash
# Lints the sources without a compiler (the CI's lint job runs in the default image):
# whitespace, final newlines, header guards, banned unsafe functions, shell syntax.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
fail() {
  echo "lint: $*" >&2
  status=1
}

# Here-strings, not process substitution: works even where /dev/fd is missing.
mapfile -t sources <<<"$(find include src tests -type f \( -name '*.c' -o -name '*.h' \) | sort)"
mapfile -t scripts <<<"$(find scripts -type f -name '*.sh' | sort)"

for f in "${sources[@]}" "${scripts[@]}" Makefile; do
  if grep -nE '[[:space:]]+$' "$f" >/dev/null; then
    fail "$f: trailing white space on line(s) $(grep -nE '[[:space:]]+$' "$f" | cut -d: -f1 | paste -sd, -)"
  fi
  if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then
    fail "$f: no newline at the end of the file"
  fi
done

for f in "${sources[@]}"; do
  if grep -n $'\t' "$f" >/dev/null; then
    fail "$f: tab characters (indent C with spaces)"
  fi
  if grep -nE '\b(gets|strcpy|strcat|sprintf)[[:space:]]*\(' "$f"; then
    fail "$f: unsafe function (use fgets, snprintf, ...)"
  fi
done

for f in include/*.h; do
  guard=$(basename "$f" | tr 'a-z.' 'A-Z_')
  grep -q "^#ifndef $guard\$" "$f" && grep -q "^#define $guard\$" "$f" ||
    fail "$f: missing include guard $guard"
done

for f in "${scripts[@]}"; do
  bash -n "$f" || fail "$f: shell syntax error"
done

if [ "$status" -eq 0 ]; then
  echo "lint: ${#sources[@]} C files and ${#scripts[@]} scripts are clean"
fi
exit "$status"
