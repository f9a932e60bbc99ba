#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its corpus in the tree
# (read-only: new inputs go to a temporary directory, removed on exit).
#   tests/fuzz/run.sh FUZZER CORPUS_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 secs=$3
work=$(mktemp -d /tmp/ferry-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
# -rss_limit_mb: a leak or a blow-up (an alias bomb) fails the run;
# -max_len: manifests larger than this add nothing but time.
"$fuzzer" "$work" "$corpus" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=65536 \
  -timeout=10 -print_final_stats=1 2>&1 | tail -n 25
