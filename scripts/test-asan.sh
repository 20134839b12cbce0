#!/usr/bin/env bash
# `make test-asan`: builds the unit and integration tests (and the sandci binary
# they run) with AddressSanitizer and UndefinedBehaviorSanitizer in their own build
# dir, then runs them. Any report fails the test that caused it: ASan aborts, UBSan
# halts on the first finding, LeakSanitizer reports at exit.
# Usage: test-asan.sh [BUILD_DIR]   (default build-asan)
# ASAN_BUILD_ONLY=1 builds without running; ASAN_CTEST_ARGS adds ctest arguments.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_dir=${1:-$root/build-asan}
jobs=${JOBS:-$(nproc)}

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# -O1 keeps the tests fast enough while the reports keep their line numbers. Not
# -Werror: g++ warns differently with sanitizers on (false -Wmaybe-uninitialized);
# the normal build is the one that keeps the code warning-free.
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Asan -DSANDCI_WERROR=OFF "${launcher[@]}" \
    -DCMAKE_CXX_FLAGS_ASAN="-O1 -g $san" \
    -DCMAKE_EXE_LINKER_FLAGS_ASAN="-fsanitize=address,undefined" >/dev/null
fi

# Only what ctest -L unit / -L integration runs: the unit_* and integration_*
# binaries (they pull in the sandci binary and the sandbox probe).
mapfile -t targets < <(cmake --build "$build_dir" --target help |
                       sed -n 's/^\.\.\. \(\(unit\|integration\)_[a-z_]*\).*/\1/p')
[ "${#targets[@]}" -gt 0 ] || { echo "test-asan: no test targets found" >&2; exit 1; }
cmake --build "$build_dir" -j "$jobs" --target sandci "${targets[@]}"
[ -n "${ASAN_BUILD_ONLY:-}" ] && exit 0

bash "$here/test-setup.sh" "$build_dir"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# Tests the sanitizers cannot run, each with its reason, are listed (one regex per
# line, comments after #) in tests/fuzz/asan-excluded.txt.
exclude=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$root/tests/fuzz/asan-excluded.txt" | paste -sd'|' -)
status=0
for label in unit integration; do
  ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -L "^$label\$" \
    ${exclude:+-E "$exclude"} ${ASAN_CTEST_ARGS:-} || status=1
done
exit $status
