#!/usr/bin/env bash
# bench_smoke: runs scripts/bench.sh at its smallest scale (--smoke) and
# checks that every row of every table is produced and every path worked.
# Benchmarks report figures and tests assert behaviour: no figure is
# compared with anything.
#   tests/bench/bench_smoke_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
SRC=${1:?source dir} BIN=${2:?build dir}
OUT=$(mktemp -d /tmp/ferry-bench-smoke.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
fail=0 checks=0
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
ok() { checks=$((checks + 1)); }

if ! timeout 240 "$SRC/scripts/bench.sh" --smoke --no-build --build "$BIN" --out "$OUT/r" >"$OUT/bench.log" 2>&1; then
  tail -30 "$OUT/bench.log"
  echo "FAIL scripts/bench.sh --smoke exited non-zero"
  echo "0 passed, 1 failed"
  exit 1
fi
R="$OUT/r"

# traffic: every dataplane x path x metric, a number
for dp in direct ferry iptables nft; do
  n=1; [[ $dp == direct ]] && n=0
  for path in local remote nodeport; do
    for m in crr_rate crr_connect_p50_us crr_connect_p99_us tcp1_gbps tcp4_gbps udp64_kpps; do
      v=$(awk -F'\t' -v d="$dp" -v n="$n" -v p="$path" -v m="$m" \
            '$1 == d && $2 == n && $3 == p && $4 == m { print $5 }' "$R/traffic.tsv")
      if [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then ok; else bad "traffic $dp $path $m: '${v:-missing}'"; fi
    done
  done
done
# IPv6 rows: every dataplane (kube-proxy's IPv6 tables too), every metric
for dp in direct ferry iptables nft; do
  n=1; [[ $dp == direct ]] && n=0
  for path in local6 remote6; do
    for m in crr_rate crr_connect_p50_us crr_connect_p99_us tcp1_gbps tcp4_gbps udp64_kpps; do
      v=$(awk -F'\t' -v d="$dp" -v n="$n" -v p="$path" -v m="$m" \
            '$1 == d && $2 == n && $3 == p && $4 == m { print $5 }' "$R/traffic.tsv")
      if [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then ok; else bad "traffic $dp $path $m: '${v:-missing}'"; fi
    done
  done
done
for s in "| direct IPv6 | - |" "| ferry IPv6 | 1 |" "| iptables IPv6 | 1 |" "| nft IPv6 | 1 |"; do
  if [[ $(grep -cF -- "$s" "$R/results.md") == 2 ]]; then ok; else bad "results.md: '$s' not in both tables"; fi
done
# programming
for row in "ferry program_all_ms" "ferry program_all_agent_ms" "ferry endpoint_change_ms_1" \
           "ferry agent_rss_mb" "ferry bpf_map_mb" "iptables program_all_ms" "nft program_all_ms" \
           "iptables program6_all_ms" "nft program6_all_ms"; do
  read -r dp m <<<"$row"
  v=$(awk -F'\t' -v d="$dp" -v m="$m" '$1 == d && $2 == 1 && $3 == m { print $4 }' "$R/programming.tsv")
  if [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then ok; else bad "programming $dp $m: '${v:-missing}'"; fi
done
# per-packet: every case ran and took the path it names
for c in empty_xdp empty_tc clusterip_new clusterip_established clusterip_reply nodeport_xdp_new \
         nodeport_xdp_established nodeport_tc_new nodeport_tc_established; do
  v=$(awk -F'\t' -v c="$c" '$1 == c && $2 == 1 { print $3 ":" $6 }' "$R/bpf.tsv")
  if [[ "$v" =~ ^[0-9]+:1$ ]]; then ok; else bad "bpf $c: '${v:-missing}'"; fi
done
# report: tables, machine, plots
for s in "## pod -> service, endpoints on the same node" "## pod -> service, endpoints on another node" \
         "## external client -> NodePort" "## Programming" "## Per-packet cost" "Machine: " "kernel "; do
  if grep -qF -- "$s" "$R/results.md"; then ok; else bad "results.md lacks '$s'"; fi
done
for p in crr_rate tcp1_gbps tcp4_gbps udp64_kpps programming bpf_per_packet; do
  if [[ -s "$R/$p.png" ]] && grep -qF "($p.png)" "$R/results.md"; then ok; else bad "plot $p.png"; fi
done
# nothing of the run left behind
P=$(grep -o 'cluster fy[0-9a-f]*' "$OUT/bench.log" | head -1 | cut -d' ' -f2)
if [[ -n "$P" ]] && ! ip netns list | grep -q "^$P-" && [[ ! -e "/tmp/ferry-$P" ]]; then ok; else bad "leftovers of cluster '$P'"; fi

((fail)) && { echo "--- bench.log"; tail -20 "$OUT/bench.log"; }
echo "$checks passed, $fail failed"
((fail == 0))
