#!/usr/bin/env bash
# The ASan/UBSan run (issue 11), part of the test command: a clang build of
# the agent and the tests with AddressSanitizer and UndefinedBehaviorSanitizer
# in build-san, then there: the unit, model and DNS suites, the libFuzzer
# targets (FERRY_FUZZ_SECONDS each, default 20) and a subset of the e2e suite
# (see CMakeLists.txt, e2e_sanitized) with the sanitized ferryd.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${FERRY_SAN_BUILD:-$ROOT/build-san}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT} ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=ON \
  -DFERRY_FUZZ_SECONDS="${FERRY_FUZZ_SECONDS:-20}" "${launcher[@]}" >/dev/null
make -C "$B" -j"$(nproc)" --no-print-directory ferryd ferryctl ferry-echo model_tests unit_tests \
  dns_tests e2e_tests fuzz_manifest fuzz_control fuzz_dns 2>&1 | grep -E "error|warning: unused" || true
test -x "$B/ferryd" || { echo "sanitize.sh: the sanitized build failed" >&2; exit 1; }
# Its own cluster prefix: the e2e subset brings up and removes its cluster.
export FERRY_PREFIX=$("$ROOT/scripts/cluster.sh" new-prefix)
trap '"$ROOT/scripts/cluster.sh" down "$FERRY_PREFIX" >/dev/null 2>&1 || true' EXIT
cd "$B"
ctest --output-on-failure --timeout 900 -R '^(model|unit|dns|fuzz_manifest|fuzz_control|fuzz_dns|e2e_sanitized)$'
