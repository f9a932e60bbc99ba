#!/usr/bin/env bash
# ferry benchmarks: ferry against kube-proxy's iptables and nftables layouts
# and against the direct path (no translation), side by side in one run, on
# the netns test cluster (scripts/cluster.sh, shared TESTNET.md).
#
#   scripts/bench.sh [--quick | --smoke] [--out DIR] [--scales "1 1000 ..."]
#                    [--seconds S] [--dataplanes "direct ferry iptables nft"]
#                    [--nft-timeout S] [--build DIR] [--no-build]
#
#   (default)  full set: scales 1, 1,000, 10,000 (and 100,000 for ferry),
#              10 s per figure; tens of minutes, run it on a quiet machine
#   --quick    scales 1 and 1,000, 1 s per figure: under 5 minutes
#   --smoke    scale 1, tiny transfers: checks every row is produced (ctest
#              bench_smoke); its figures mean nothing
#
# Output in DIR (default <repo>/bench-results/<UTC time>): results.md (the
# tables, the machine and the notes), *.png plots, raw *.tsv, logs/.
#
# Topology: a 2-node cluster; client pod `c` on node1; server pods `s1` on
# node1 and `s2` on node2, each with 10 addresses (its 10 endpoints), running
# ferry-crr serve (TCP 8080) and iperf3 -s (5201). Paths measured:
#   local    pod c -> service whose endpoints are on the same node (s1)
#   remote   pod c -> service whose endpoints are on the other node (s2)
#   nodeport external client -> node1:NodePort -> endpoints on node2 (s2)
#   local6, remote6  local and remote over IPv6 (every pod also has 10 IPv6
#            addresses; IPv6 ClusterIPs), every figure and every dataplane
#            (kube-proxy's IPv6 tables: ip6tables-restore, nft table ip6)
# The direct dataplane dials the pod address instead (the floor; nodeport:
# the external client straight to s2 through node2).
# Dataplanes:
#   direct    no rules, no programs
#   ferry     ferryd on node1 (tc on pod veths; XDP on eth0 for the NodePort)
#   iptables  kube-proxy iptables-mode layout, iptables-restore in node1's netns
#             (and ip6tables-restore of the IPv6 twins, for local6 / remote6)
#   nft       kube-proxy nftables-mode layout, nft -f in node1's netns (tables
#             ip and ip6 kube-proxy)
# Every rule and program lives inside the run's namespaces; all is removed
# on exit, failure and Ctrl-C included (cluster.sh down).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=cluster.sh
source "$ROOT/scripts/cluster.sh"
GEN="$ROOT/scripts/bench/gen.py"
REPORT="$ROOT/scripts/bench/report.py"
CHURN="$ROOT/scripts/bench/churn.py"

MODE=full OUT="" SCALES="" SECONDS_PER="" DATAPLANES="direct ferry iptables nft"
NFT_TIMEOUT="" BUILD="${FERRY_BUILD:-$ROOT/build}" DO_BUILD=1 THREADS=4 PACKETS=""
while (($#)); do
  case "$1" in
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --out) OUT=$2; shift ;;
    --scales) SCALES=$2; shift ;;
    --seconds) SECONDS_PER=$2; shift ;;
    --dataplanes) DATAPLANES=$2; shift ;;
    --nft-timeout) NFT_TIMEOUT=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $MODE in
  full)  : "${SCALES:=1 1000 10000 100000}" "${SECONDS_PER:=10}" "${NFT_TIMEOUT:=300}" "${PACKETS:=20000}" ;;
  quick) : "${SCALES:=1 1000}" "${SECONDS_PER:=1}" "${NFT_TIMEOUT:=120}" "${PACKETS:=3000}" ;;
  smoke) : "${SCALES:=1}" "${SECONDS_PER:=1}" "${NFT_TIMEOUT:=60}" "${PACKETS:=200}" ;;
esac
# issue 12's event rows: single changes measured one at a time, and one burst
case $MODE in
  full) CHANGES=${FERRY_BENCH_CHANGES:-1000} BURST=${FERRY_BENCH_BURST:-1000} ;;
  quick) CHANGES=${FERRY_BENCH_CHANGES:-100} BURST=${FERRY_BENCH_BURST:-200} ;;
  smoke) CHANGES=${FERRY_BENCH_CHANGES:-5} BURST=${FERRY_BENCH_BURST:-10} ;;
esac
BASELINE_MAX=10000   # the kube-proxy layouts stop here (100,000 is ferry only)
PROGRAM_TIMEOUT=${FERRY_BENCH_PROGRAM_TIMEOUT:-600}   # s for ferryd to program one scale
[[ -n "$OUT" ]] || OUT="$ROOT/bench-results/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT/logs" "$OUT/work"
OUT=$(cd "$OUT" && pwd)
export FERRY_BUILD="$BUILD"

log() { echo "bench: $(date -u +%H:%M:%S) $*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"

# ---------------------------------------------------------------- set-up
need_pkgs() {
  local p missing=()
  for p in iperf3 nftables iptables gnuplot-nox python3 iproute2 ethtool; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
need_pkgs
if ((DO_BUILD)); then
  log "building"
  cmake -S "$ROOT" -B "$BUILD" >/dev/null
  make -C "$BUILD" -j2 ferryd ferryctl ferry-crr ferry-bpfbench xdp_pass_skel >"$OUT/logs/build.log" 2>&1 \
    || { tail -20 "$OUT/logs/build.log" >&2; die "build failed (logs/build.log)"; }
fi
for b in ferryd ferryctl ferry-crr ferry-bpfbench bpf/xdp_pass.bpf.o; do
  [[ -e "$BUILD/$b" ]] || die "missing $BUILD/$b (build first)"
done
CRR="$BUILD/ferry-crr"

P=$(cluster_new_prefix)
RUN=/tmp/ferry-$P
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleaning up cluster $P"
  cluster_down "$P" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cluster $P, mode $MODE, scales $SCALES, results in $OUT"
cluster_up "$P" >/dev/null
ns_node1="$P-node1"
cluster_add_pod "$P" node1 c 198.18.129.2,2001:db8:1:1::2 >/dev/null
cluster_add_pod "$P" node1 s1 198.18.129.10,2001:db8:1:1::10 >/dev/null
cluster_add_pod "$P" node2 s2 198.18.130.10,2001:db8:1:2::10 >/dev/null
# every server pod answers on 10 addresses per family: its 10 endpoints
for pair in "s1 node1 129 1" "s2 node2 130 2"; do
  read -r pod node net net6 <<<"$pair"
  host=$(sed -n 's/^host=//p' "$RUN/pods/$pod")
  for k in $(seq 11 19); do
    ip -n "$P-pod-$pod" addr add "198.18.$net.$k/32" dev eth0
    ip -n "$P-$node" route add "198.18.$net.$k/32" dev "$host"
    # deprecated (preferred_lft 0): still served, never picked as a source
    # address, so a UDP reply (iperf3 connects its socket back to the client)
    # comes from the pod's first address, the UDP port's only endpoint, as in
    # IPv4 (else IPv6 picks the newest address and the reply is not translated)
    ip -n "$P-pod-$pod" addr add "2001:db8:1:$net6::$k/128" dev eth0 nodad preferred_lft 0
    ip -n "$P-$node" -6 route add "2001:db8:1:$net6::$k/128" dev "$host"
  done
  ip netns exec "$P-pod-$pod" setsid -f "$CRR" serve --port 8080 >"$OUT/logs/crr-$pod.log" 2>&1
  ip netns exec "$P-pod-$pod" iperf3 -s -D >/dev/null 2>&1
done
for ns in "$P-pod-c" "$P-ext"; do   # the client side closes first: TIME_WAIT reuse, wide port range
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 "net.ipv4.ip_local_port_range=1024 65535"
done
ip -n "$P-ext" route add 198.18.130.0/24 via 198.18.0.12   # the direct path of the external client
for i in $(seq 1 50); do
  ok=1
  for pod in s1 s2; do
    ip netns exec "$P-pod-$pod" ss -Hltn 'sport = :8080' | grep -q . || ok=0
    ip netns exec "$P-pod-$pod" ss -Hltn 'sport = :5201' | grep -q . || ok=0
  done
  ((ok)) && break
  sleep 0.1
done
((ok)) || die "servers not listening"

# ---------------------------------------------------------------- machine
{
  echo "date_utc	$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu	$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "cpus	$(nproc)"
  echo "memory	$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel	$(uname -r)"
  echo "os	$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "iperf3	$(iperf3 --version 2>&1 | head -1)"
  echo "iptables	$(iptables --version 2>&1)"
  echo "nft	$(nft --version 2>&1)"
  echo "ferry	$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load	$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "mode	$MODE (${SECONDS_PER} s per figure, $THREADS connection-rate threads)"
} >"$OUT/machine.tsv"

# ---------------------------------------------------------------- measurements
TRAFFIC="$OUT/traffic.tsv" PROG="$OUT/programming.tsv" BPF="$OUT/bpf.tsv"
printf 'dataplane\tservices\tpath\tmetric\tvalue\n' >"$TRAFFIC"
printf 'dataplane\tservices\tmetric\tvalue\n' >"$PROG"
printf 'case\tservices\tmedian_ns\tmean_ns\tp99_ns\tok\n' >"$BPF"

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TRAFFIC"; }
recp() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$PROG"; }

iperf_tcp_args() { if [[ $MODE == smoke ]]; then echo "-n 20M"; else echo "-t $SECONDS_PER"; fi; }
iperf_udp_args() { if [[ $MODE == smoke ]]; then echo "-k 2000"; else echo "-t $SECONDS_PER"; fi; }
crr_seconds() { if [[ $MODE == smoke ]]; then echo 0.3; else echo "$SECONDS_PER"; fi; }

# measure DP N PATH CLIENT_NS IP CRR_PORT IPERF_PORT
measure() {
  local dp=$1 n=$2 path=$3 cns=$4 ip=$5 cport=$6 iport=$7 tag out v
  tag="$dp-$n-$path"
  out=$(timeout $((SECONDS_PER + 30)) ip netns exec "$cns" "$CRR" run "$ip" "$cport" \
          --threads "$THREADS" --seconds "$(crr_seconds)" 2>>"$OUT/logs/$tag-crr.err") || out=""
  echo "$out" >"$OUT/logs/$tag-crr.txt"
  if [[ "$out" == conns=* ]]; then
    for v in rate connect_p50_us connect_p99_us errors; do
      rec "$dp" "$n" "$path" "crr_$v" "$(sed -n "s/.* $v=\([0-9.]*\).*/\1/p" <<<" $out")"
    done
  else
    rec "$dp" "$n" "$path" crr_rate fail
  fi
  local streams
  for streams in 1 4; do
    # shellcheck disable=SC2046
    if timeout $((SECONDS_PER + 30)) ip netns exec "$cns" iperf3 -c "$ip" -p "$iport" -P "$streams" \
         $(iperf_tcp_args) -J >"$OUT/logs/$tag-tcp$streams.json" 2>&1; then
      v=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' \
            "$OUT/logs/$tag-tcp$streams.json" 2>/dev/null || echo fail)
    else v=fail; fi
    rec "$dp" "$n" "$path" "tcp${streams}_gbps" "$v"
  done
  # shellcheck disable=SC2046
  if timeout $((SECONDS_PER + 30)) ip netns exec "$cns" iperf3 -c "$ip" -p "$iport" -u -b 0 -l 64 \
       $(iperf_udp_args) -J >"$OUT/logs/$tag-udp.json" 2>&1; then
    v=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
print("%.1f" % ((s["packets"] - s["lost_packets"]) / s["seconds"] / 1e3))' "$OUT/logs/$tag-udp.json" 2>/dev/null || echo fail)
  else v=fail; fi
  rec "$dp" "$n" "$path" udp64_kpps "$v"
  log "  $dp $n $path: $(grep -o 'rate=[0-9]*' <<<"$out" || echo 'crr fail')"
}

measure_paths() { # DP N [FAMILIES: 46 (default), 4 or 6] (service addresses) | direct
  local dp=$1 n=$2 fams=${3:-46}
  if [[ $fams == *4* && $dp == direct ]]; then
    measure "$dp" "$n" local "$P-pod-c" 198.18.129.10 8080 5201
    measure "$dp" "$n" remote "$P-pod-c" 198.18.130.10 8080 5201
    measure "$dp" "$n" nodeport "$P-ext" 198.18.130.10 8080 5201
  elif [[ $fams == *4* ]]; then
    measure "$dp" "$n" local "$P-pod-c" 198.19.255.250 80 5201
    measure "$dp" "$n" remote "$P-pod-c" 198.19.255.251 80 5201
    measure "$dp" "$n" nodeport "$P-ext" 198.18.0.11 30080 30201
  fi
  # IPv6 (gen.py's measured-local6 / measured-remote6)
  if [[ $fams == *6* && $dp == direct ]]; then
    measure "$dp" "$n" local6 "$P-pod-c" 2001:db8:1:1::10 8080 5201
    measure "$dp" "$n" remote6 "$P-pod-c" 2001:db8:1:2::10 8080 5201
  elif [[ $fams == *6* ]]; then
    measure "$dp" "$n" local6 "$P-pod-c" 2001:db8:ffff::fffa 80 5201
    measure "$dp" "$n" remote6 "$P-pod-c" 2001:db8:ffff::fffb 80 5201
  fi
}

# restore_timed DP N METRIC TOOL FILE: loads FILE into node1's netns with
# TOOL (iptables-restore, ip6tables-restore, nft -f), records METRIC (ms,
# timeout or fail); exit status 0 when loaded.
restore_timed() {
  local dp=$1 n=$2 metric=$3 tool=$4 f=$5 t0 t1 rc=0
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  timeout "$NFT_TIMEOUT" ip netns exec "$ns_node1" $tool "$f" 2>"$OUT/logs/$dp-$metric-$n.err" || rc=$?
  t1=$(date +%s.%N)
  if ((rc == 124)); then
    recp "$dp" "$n" "$metric" timeout
    log "  $tool did not finish in ${NFT_TIMEOUT} s"
    return 1
  fi
  ((rc == 0)) || { recp "$dp" "$n" "$metric" fail; return 1; }
  recp "$dp" "$n" "$metric" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
}

# A timestamp of the agent log (HH:MM:SS.mmm, UTC) minus T0 (seconds of the
# UTC day), in ms.
log_ms_since() {
  # the agent's log time is RFC 3339 ("2026-11-30T01:11:59.088Z"): its time of day
  awk -v t="$1" -v t0="$2" 'BEGIN { sub(/^.*T/, "", t); sub(/Z$/, "", t);
                                    split(t, a, ":"); s = a[1] * 3600 + a[2] * 60 + a[3];
                                    d = s - t0; if (d < -43200) d += 86400; printf "%.0f", d * 1000 }'
}
now_sod() { date -u +%H:%M:%S.%N | awk -F: '{ printf "%.6f", $1 * 3600 + $2 * 60 + $3 }'; }

# wait_synced LOG FROM_LINE PATTERN TIMEOUT_S -> prints the matching line
wait_synced() {
  local logf=$1 from=$2 pat=$3 limit=$4 i line
  for ((i = 0; i < limit * 50; i++)); do
    line=$(tail -n +"$((from + 1))" "$logf" | grep -E "$pat" | tail -1 || true)
    [[ -n "$line" ]] && { echo "$line"; return 0; }
    sleep 0.02
  done
  return 1
}

agent_stop() {
  cluster_stop_agent "$P" node1 >/dev/null 2>&1 || true
  if [[ -d "$RUN/bpffs/node1" ]]; then
    timeout 60 nsenter --net="/run/netns/$ns_node1" "$BUILD/ferryd" --cleanup --node-name node1 \
      --bpffs "$RUN/bpffs/node1" --cgroup "$(_cl_cg2)/ferry-$P-node1" >>"$OUT/logs/ferryd-cleanup.log" 2>&1 || true
  fi
  rm -rf "$RUN/manifests" "$RUN/state-node1"
  mkdir -p "$RUN/manifests" "$RUN/state-node1"
}

# As cluster.sh start-agent (same files, so cluster.sh down stops it), with
# map sizes for N services and the IPv6 service range (fillers past 60,000).
agent_start() {
  local n=$1 svc be pid i
  svc=$((n * 12 + 4096)) be=$((n * 11 + 4096))
  rm -f "$RUN/node1.sock"
  : >"$RUN/node1.log"
  nsenter --net="/run/netns/$ns_node1" "$BUILD/ferryd" \
    --manifests "$RUN/manifests" --node-name node1 --service-cidr 198.19.0.0/16,2001:db8:ffff::/112 \
    --bpffs "$RUN/bpffs/node1" --socket "$RUN/node1.sock" --state-dir "$RUN/state-node1" \
    --cgroup "$(_cl_cg2)/ferry-$P-node1" --external-device eth0 \
    --svc-map-size "$svc" --backend-map-size "$be" </dev/null >>"$RUN/node1.log" 2>&1 &
  pid=$!
  echo "$pid" >"$RUN/node1.pid"
  for ((i = 0; i < 100; i++)); do
    [[ -S "$RUN/node1.sock" ]] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -5 "$RUN/node1.log" >&2; die "ferryd exited"; }
    sleep 0.1
  done
  die "ferryd: no control socket after 10 s"
}

cpu_ticks() { # user + system time of a process and all its threads, clock ticks
  awk '{ print $14 + $15 }' /proc/"$1"/stat 2>/dev/null || echo 0
}

map_memory_mb() { # memlock of the maps the agent holds
  local pid=$1
  awk 'FNR == 1 { m = 0 } /^map_type/ { m = 1 } /^memlock/ { if (m) s += $2 } END { printf "%.1f", s / 1048576 }' \
    /proc/"$pid"/fdinfo/* 2>/dev/null
}

bench_ferry() {
  # staged on the watched directory's file system, so moving in is a rename
  local n=$1 stage="$RUN/stage-$n" from line t0 ms pid f count
  count=$((n < 2 ? 2 : n))   # scale 1 still has both measured services
  count=$((count + 2))        # and the two IPv6 ones (gen.py: beyond N)
  log "ferry, $n services"
  agent_stop
  rm -rf "$stage"
  python3 "$GEN" manifests "$n" "$stage"
  agent_start "$n"
  sleep 0.3
  from=$(wc -l <"$RUN/node1.log")
  # control-socket round trips while the agent programs everything (its loop's stall)
  python3 "$CHURN" ping "$RUN/node1.sock" "$PROGRAM_TIMEOUT" >"$OUT/work/ping-$n.tsv" 2>/dev/null &
  local pinger=$! cpu0
  cpu0=$(cpu_ticks "$(cat "$RUN/node1.pid")")
  t0=$(now_sod)
  for f in "$stage"/fillers-*.json "$stage"/99-measured.json; do
    [[ -e "$f" ]] && mv "$f" "$RUN/manifests/"
  done
  if line=$(wait_synced "$RUN/node1.log" "$from" "synced $count services" "$PROGRAM_TIMEOUT"); then
    kill -TERM "$pinger" 2>/dev/null || true
    wait "$pinger" 2>/dev/null || true
    awk -F'\t' -v n="$n" '$1 ~ /^control_rtt_ms_/ { sub(/^control/, "program_control", $1); printf "ferry\t%s\t%s\t%s\n", n, $1, $2 }' \
      "$OUT/work/ping-$n.tsv" >>"$PROG"
    ms=$(log_ms_since "${line%% *}" "$t0")
    recp ferry "$n" program_all_ms "$ms"
    # CPU, not wall time, is what a shared machine does not blur
    recp ferry "$n" program_all_cpu_s "$(awk -v a="$cpu0" -v b="$(cpu_ticks "$(cat "$RUN/node1.pid")")" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
    recp ferry "$n" program_all_agent_ms "$(sed -n 's/.* in \([0-9]*\) us.*/\1/p' <<<"$line" | awk '{ printf "%.1f", $1 / 1000 }')"
  else
    kill -TERM "$pinger" 2>/dev/null || true
    wait "$pinger" 2>/dev/null || true
    recp ferry "$n" program_all_ms timeout
    log "  ferryd did not finish programming in $PROGRAM_TIMEOUT s"
    cp "$RUN/node1.log" "$OUT/logs/ferryd-$n.log"
    agent_stop
    return 0
  fi
  # an endpoint change re-syncs everything today: allow it what the full sync took
  local limit=$((ms / 1000 * 3 + 30))
  grep -q "Z error " "$RUN/node1.log" && log "  agent errors: $(grep -c "Z error " "$RUN/node1.log") (see logs/ferryd-$n.log)"
  # a single endpoint change (one endpoint leaves the same-node service), then back
  local k total=0 cnt=0 worst=0
  for k in 1 2 3 4; do   # remove, restore, remove, restore
    python3 "$GEN" endpoints-change "$RUN/manifests" "$stage/99-measured.json"
    from=$(wc -l <"$RUN/node1.log")
    t0=$(now_sod)
    mv "$stage/99-measured.json" "$RUN/manifests/99-measured.json"
    if line=$(wait_synced "$RUN/node1.log" "$from" "synced $count services" "$limit"); then
      ms=$(log_ms_since "${line%% *}" "$t0")
      recp ferry "$n" "endpoint_change_ms_$k" "$ms"
      recp ferry "$n" "endpoint_change_agent_ms_$k" \
        "$(sed -n 's/.* in \([0-9]*\) us.*/\1/p' <<<"$line" | awk '{ printf "%.2f", $1 / 1000 }')"
    else
      recp ferry "$n" "endpoint_change_ms_$k" timeout
      break
    fi
    sleep 0.2
  done
  if ((k % 2)); then   # left with one endpoint out: put it back before the traffic figures
    python3 "$GEN" endpoints-change "$RUN/manifests" "$stage/99-measured.json"
    from=$(wc -l <"$RUN/node1.log")
    mv "$stage/99-measured.json" "$RUN/manifests/99-measured.json"
    wait_synced "$RUN/node1.log" "$from" "synced $count services" "$limit" >/dev/null || true
  fi
  # issue 12: event-to-map time over many single changes, then a burst
  mkdir -p "$stage"
  log "  $CHANGES single endpoint changes, then a burst of $BURST slices"
  timeout 900 python3 "$CHURN" changes "$RUN/manifests" "$stage" "$RUN/node1.sock" "$RUN/node1.log" "$CHANGES" \
    2>>"$OUT/logs/churn-$n.err" | awk -v n="$n" -F'\t' 'NF == 2 { printf "ferry\t%s\t%s\t%s\n", n, $1, $2 }' >>"$PROG" || true
  timeout 900 python3 "$CHURN" burst "$RUN/manifests" "$stage/burst" "$RUN/node1.sock" "$RUN/node1.log" "$BURST" "$n" \
    2>>"$OUT/logs/churn-$n.err" | awk -v n="$n" -F'\t' 'NF == 2 { printf "ferry\t%s\t%s\t%s\n", n, $1, $2 }' >>"$PROG" || true
  rm -rf "$stage"
  sleep 0.5
  pid=$(cat "$RUN/node1.pid")
  recp ferry "$n" agent_rss_mb "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/"$pid"/status)"
  recp ferry "$n" bpf_map_mb "$(map_memory_mb "$pid")"
  measure_paths ferry "$n"
  cp "$RUN/node1.log" "$OUT/logs/ferryd-$n.log"
  agent_stop
}

bench_bpf() {
  local n=$1
  log "BPF per-packet cost, $n services"
  timeout 600 "$BUILD/ferry-bpfbench" --services "$n" --packets "$PACKETS" 2>>"$OUT/logs/bpfbench.err" \
    | awk -v n="$n" 'NF == 6' >>"$BPF" || log "  ferry-bpfbench failed (logs/bpfbench.err)"
}

flush_node1() { ip netns exec "$ns_node1" nft flush ruleset 2>/dev/null || true; }

# bench_kube_proxy DP N: kube-proxy's DP layout (iptables or nft) of N
# services, the IPv4 table (program_all_ms) then the IPv6 one
# (program6_all_ms), and the paths of each family that loaded.
bench_kube_proxy() {
  local dp=$1 n=$2 f4 f6 tool4 tool6 fams=""
  case $dp in
    iptables) f4="$OUT/work/iptables-$n.rules" f6="$OUT/work/ip6tables-$n.rules"
              tool4="iptables-restore" tool6="ip6tables-restore" ;;
    nft) f4="$OUT/work/nft-$n.nft" f6="$OUT/work/nft6-$n.nft" tool4="nft -f" tool6="nft -f" ;;
  esac
  log "$dp, $n services (timeout ${NFT_TIMEOUT} s per family)"
  python3 "$GEN" "$dp" "$n" "$f4"
  python3 "$GEN" "${dp}6" "$n" "$f6"
  flush_node1
  restore_timed "$dp" "$n" program_all_ms "$tool4" "$f4" && fams+=4
  restore_timed "$dp" "$n" program6_all_ms "$tool6" "$f6" && fams+=6
  [[ -n "$fams" ]] && measure_paths "$dp" "$n" "$fams"
  flush_node1
}

has_dp() { [[ " $DATAPLANES " == *" $1 "* ]]; }

if has_dp direct; then log "direct"; measure_paths direct 0; fi
for n in $SCALES; do
  if has_dp ferry; then bench_ferry "$n"; bench_bpf "$n"; fi
  if ((n <= BASELINE_MAX)); then
    if has_dp iptables; then bench_kube_proxy iptables "$n"; fi
    if has_dp nft; then bench_kube_proxy nft "$n"; fi
  fi
done

log "report"
python3 "$REPORT" "$OUT" >"$OUT/logs/report.log" 2>&1 || { cat "$OUT/logs/report.log" >&2; die "report failed"; }
log "done: $OUT/results.md"
