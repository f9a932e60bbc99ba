#!/usr/bin/env bash
# The ASan/UBSan run (issue 11), part of the test command. Three stages:
#   build   a clang build with AddressSanitizer and UndefinedBehaviorSanitizer
#           of ferryd, the model/unit/DNS test binaries and the libFuzzer
#           targets, in build-san (FERRY_SAN_BUILD);
#   suites  there: the model, unit and DNS suites and every fuzz target for
#           FERRY_FUZZ_SECONDS (default 20) over its corpus in
#           tests/fuzz/corpus (no named network namespace);
#   e2e     a subset of the e2e suite (the driver from the normal build) with
#           the sanitized ferryd on both nodes: HardeningTest.* and three
#           service and lifecycle tests, on a cluster of its own prefix. An
#           ASan or UBSan report makes the agent exit non-zero, which those
#           tests see; a report in the agents' logs fails the stage too.
# No stage named: all three in order (a failed build stops there). The
# normal build's CTest runs them as three tests: `sanitized_build` (a
# fixture, beside the e2e cases), then `sanitized_suites` and `sanitized`
# (the e2e stage, under the e2e_cluster lock).
#   scripts/sanitize.sh [build|suites|e2e] [NORMAL_BUILD_DIR]   (default <repo>/build)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stages=(build suites e2e)
case ${1:-} in
  build|suites|e2e) stages=("$1"); shift ;;
esac
NORMAL=${1:-$ROOT/build}
B=${FERRY_SAN_BUILD:-$ROOT/build-san}
# A small quarantine keeps the agents' RSS near the unsanitized figure (the
# e2e tests bound it); timing and memory bounds are scaled (FERRY_SANITIZED).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=32}
export FERRY_SANITIZED=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

build() {
  local launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 with line tables: half the compile time of -O2 -g, stack traces kept.
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$B" \
    -DCMAKE_BUILD_TYPE=Release -DFERRY_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_RELEASE="-O1" \
    -DFERRY_FUZZ_SECONDS="${FERRY_FUZZ_SECONDS:-20}" "${launcher[@]}" >/dev/null || {
    echo "sanitize.sh: configuring the sanitized build in $B failed" >&2
    return 1
  }
  make -C "$B" -j"$(nproc)" --no-print-directory ferryd model_tests unit_tests dns_tests \
    fuzz_manifest fuzz_control fuzz_dns >"$B/build.log" 2>&1 || {
    grep -E "error" "$B/build.log" | head -n 40 >&2
    echo "sanitize.sh: the sanitized build failed (log: $B/build.log)" >&2
    return 1
  }
  echo "sanitize.sh: sanitized build done in $B"
}

need_tree() {
  [[ -x "$B/ferryd" && -f "$B/CTestTestfile.cmake" ]] && return 0
  echo "sanitize.sh: no sanitized build in $B (scripts/sanitize.sh build)" >&2
  return 1
}

suites() {
  need_tree || return 1
  (cd "$B" && ctest --output-on-failure --timeout 600 \
    -R '^((model|unit|dns)\.|fuzz_(manifest|control|dns)$)')
}

e2e() {
  need_tree || return 1
  [[ -x "$NORMAL/e2e_tests" ]] || {
    echo "sanitize.sh: no e2e driver $NORMAL/e2e_tests (build the normal tree first)" >&2
    return 1
  }
  local rc=0
  # The e2e subset brings up (and removes) a cluster of its own prefix.
  export FERRY_PREFIX=$("$ROOT/scripts/cluster.sh" new-prefix)
  trap '"$ROOT/scripts/cluster.sh" down "$FERRY_PREFIX" >/dev/null 2>&1 || true' EXIT
  FERRYD="$B/ferryd" "$NORMAL/e2e_tests" \
    --gtest_filter='HardeningTest.*:ClusterTest.BadManifestNextToGoodOnes:ByFamily/ClusterFamilyTest.EndpointsChangeWhileRunning/*:ByFamily/ClusterFamilyTest.AgentRestartDuringTraffic/*' \
    || rc=1
  # Sanitizer reports in the agents' logs (a report that did not stop a test).
  if grep -l -E "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" \
      "/tmp/ferry-$FERRY_PREFIX"/node*.log 2>/dev/null; then
    echo "sanitize.sh: sanitizer reports in the agents' logs (above)" >&2
    rc=1
  fi
  return $rc
}

rc=0
for s in "${stages[@]}"; do
  if [[ $s == build ]]; then
    build || exit 1
  else
    "$s" || rc=1
  fi
done
exit $rc
