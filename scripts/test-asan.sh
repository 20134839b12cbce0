#!/usr/bin/env bash
# `make test-asan`: builds the unit and integration tests (and the sandci binary
# they run) with AddressSanitizer and UndefinedBehaviorSanitizer in their own build
# dir, then runs them. Any report fails the run: ASan aborts, UBSan halts on the
# first finding, LeakSanitizer reports at exit; and since the tests also start the
# instrumented sandci binary (the CLI, the daemon they stop with SIGTERM), whose
# exit status a test may expect to be nonzero anyway, every report of every process
# is written to BUILD_DIR/sanitizer-reports and any file there fails the run.
# Usage: test-asan.sh [BUILD_DIR]   (default build-asan)
# ASAN_BUILD_ONLY=1 builds without running; ASAN_CTEST_ARGS adds ctest arguments;
# JOBS sets the build's and ctest's parallelism (default: the number of CPUs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_dir=$(realpath -m "${1:-$root/build-asan}")
jobs=${JOBS:-$(nproc)}

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# -O1 keeps the tests fast enough while the reports keep their line numbers. Not
# -Werror: g++ warns differently with sanitizers on (false -Wmaybe-uninitialized);
# the normal build is the one that keeps the code warning-free.
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# Configured every time (cheap when nothing changed) so that a change of the flags
# above reaches an existing build dir.
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Asan -DSANDCI_WERROR=OFF "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_ASAN="-O1 -g $san" \
  -DCMAKE_EXE_LINKER_FLAGS_ASAN="-fsanitize=address,undefined" >/dev/null

# Only what ctest -L unit / -L integration runs: the unit_* and integration_*
# binaries (they pull in the sandci binary and the sandbox probe).
mapfile -t targets < <(cmake --build "$build_dir" --target help |
                       sed -n 's/^\.\.\. \(\(unit\|integration\)_[a-z_]*\).*/\1/p')
[ "${#targets[@]}" -gt 0 ] || { echo "test-asan: no test targets found" >&2; exit 1; }
start=$(date +%s)
cmake --build "$build_dir" -j "$jobs" --target sandci "${targets[@]}"
echo "test-asan: built ${#targets[@]} test binaries and sandci in $(( $(date +%s) - start )) s"
[ -n "${ASAN_BUILD_ONLY:-}" ] && exit 0

bash "$here/test-setup.sh" "$build_dir"

reports=$build_dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# log_path: each process writes its reports to <reports>/<asan|ubsan>.<exe>.<pid>
# (the exe name tells the test binary from the sandci it started).
supp=$root/tests/fuzz
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:log_path=$reports/asan:log_exe_name=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp:log_path=$reports/ubsan:log_exe_name=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# Tests the sanitizers cannot run, each with its reason, are listed (one regex per
# line, comments after #) in tests/fuzz/asan-excluded.txt.
exclude=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$supp/asan-excluded.txt" | paste -sd'|' -)
exclude_args=()
[ -n "$exclude" ] && exclude_args=(-E "$exclude")
status=0
start=$(date +%s)
for label in unit integration; do
  # shellcheck disable=SC2086  # ASAN_CTEST_ARGS is a list of arguments
  ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" -L "^$label\$" \
    "${exclude_args[@]}" ${ASAN_CTEST_ARGS:-} || status=1
done
echo "test-asan: ran the unit and integration tests in $(( $(date +%s) - start )) s"

mapfile -t found < <(find "$reports" -type f | sort)
if [ "${#found[@]}" -gt 0 ]; then
  for f in "${found[@]}"; do
    echo "===== $f"
    cat "$f"
  done
  echo "test-asan: ${#found[@]} sanitizer report(s) in $reports" >&2
  status=1
else
  echo "test-asan: no sanitizer report"
fi
exit $status
