#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its corpus in the tree
# (read-only: new inputs go to a temporary directory, removed on exit).
#   tests/fuzz/run.sh FUZZER CORPUS_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 secs=$3
work=$(mktemp -d /tmp/ferry-fuzz-XXXXXX)
# Known leaks in libldns itself (see the file); ferry's own leaks still fail.
export LSAN_OPTIONS=suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
trap 'rm -rf "$work"' EXIT
# -rss_limit_mb: a leak or a blow-up (an alias bomb) fails the run;
# -max_len: manifests larger than this add nothing but time.
# Crash and leak inputs are kept in /tmp (printed in the log), out of the trees.
"$fuzzer" "$work" "$corpus" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 \
  -artifact_prefix="/tmp/ferry-fuzz-$(basename "$fuzzer")-" \
  -timeout=10 -print_final_stats=1 2>&1 | tail -n 25
