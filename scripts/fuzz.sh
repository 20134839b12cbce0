#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets (tests/fuzz) with clang and libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer in their own build dir, then runs
# each on its corpus for FUZZ_SECONDS (default 60). New inputs libFuzzer finds go to
# BUILD_DIR/fuzz-corpus/<target>, never into the source tree; a crash, leak, timeout
# or UB report stops that target and leaves the input as
# BUILD_DIR/fuzz-artifacts/<target>/crash-* (or leak-*, timeout-*).
# Usage: fuzz.sh [BUILD_DIR]   (default build-fuzz); FUZZ_TARGETS="webhook ..." picks targets.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build_dir=${1:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"webhook workflow_loader expression"}
jobs=${JOBS:-$(nproc)}

# g++ has no libFuzzer. Debian 12's clang-14 cannot compile this code (its libstdc++
# <expected> needs C++20 concepts as clang 19 has them), so clang 19 from the Debian
# 12 archive it is.
clang=clang++-19
if ! command -v "$clang" >/dev/null || [ ! -d /usr/lib/llvm-19/lib/clang/19/lib/linux ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "fuzz: clang-19 and libclang-rt-19-dev are missing; install them as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-19 libclang-rt-19-dev
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  # Not -Werror: clang warns about other things than the g++ build keeps clean.
  cmake -S "$root" -B "$build_dir" -DCMAKE_CXX_COMPILER="$clang" -DCMAKE_BUILD_TYPE=Fuzz \
    -DSANDCI_WERROR=OFF -DSANDCI_LIBFUZZER=ON "${launcher[@]}" \
    -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
    -DCMAKE_EXE_LINKER_FLAGS_FUZZ="-fsanitize=address,undefined" >/dev/null
fi
build_targets=()
for t in $targets; do build_targets+=("fuzz_$t"); done
cmake --build "$build_dir" -j "$jobs" --target "${build_targets[@]}"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
status=0
for t in $targets; do
  corpus=$build_dir/fuzz-corpus/$t
  artifacts=$build_dir/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $t for ${seconds} s"
  # The seeds are read-only inputs (the second corpus dir); findings are merged into
  # the first. -timeout: an input over 10 s is a hang; -rss_limit_mb: a leak or blow-up.
  if ! "$build_dir/tests/fuzz_$t" "$corpus" "$root/tests/fuzz/corpus/$t" \
      -dict="$root/tests/fuzz/dict/$t.dict" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      >"$build_dir/fuzz-$t.log" 2>&1; then
    echo "fuzz: $t FAILED; see $build_dir/fuzz-$t.log and $artifacts" >&2
    grep -E "^(==|SUMMARY|fuzz: property)|runtime error" "$build_dir/fuzz-$t.log" | head -20 >&2 || true
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build_dir/fuzz-$t.log" || true
  fi
done
exit $status
