#!/usr/bin/env bash
# ferry's test command: install dependencies if missing, build, run every
# test (unit, BPF golden packets, netns end-to-end). Needs root (BPF,
# network namespaces). Exits non-zero when any test fails.
#   scripts/test.sh [ctest args, e.g. -R bpf]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root (BPF programs and network namespaces)" >&2
  exit 1
fi
"$ROOT/scripts/build.sh"
# The e2e suite brings its cluster up under this prefix (cluster.sh reads
# FERRY_PREFIX) and removes it itself; the trap catches what a crash left,
# without touching other runs.
export FERRY_PREFIX=${FERRY_PREFIX:-$("$ROOT/scripts/cluster.sh" new-prefix)}
# this script owns the run: scripts/cleanup.sh leaves it alone while it runs
export FERRY_OWNER=$$
trap '"$ROOT/scripts/cluster.sh" down "$FERRY_PREFIX" >/dev/null 2>&1 || true' EXIT
cd "$ROOT/build"
# One job per core: the e2e cases, bench_smoke, the kubectl checks and the
# sanitized e2e subset each bring up network namespaces and hold the CTest
# resource lock e2e_cluster (one at a time); the in-process suites (BPF
# golden packets, unit, model, DNS) and the sanitized build and suites
# (sanitized_build, sanitized_suites) run beside them. FERRY_TEST_JOBS=1
# runs serially.
ctest --output-on-failure --timeout 900 -j "${FERRY_TEST_JOBS:-$(nproc)}" "$@"
