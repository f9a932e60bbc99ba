#!/usr/bin/env bash
# ferry netns test cluster (see shared TESTNET.md / PLATFORM.md).
#
# Use as a CLI:
#   scripts/cluster.sh up [P]                     -> prints the prefix P
#   scripts/cluster.sh down P
#   scripts/cluster.sh pod P NODE NAME [IP[,IP6]|auto]   -> prints the pod's address(es)
#   scripts/cluster.sh delpod P NAME
#   scripts/cluster.sh node-exec P NODE cmd...
#   scripts/cluster.sh pod-exec P NAME cmd...
#   scripts/cluster.sh start-agent P NODE [--no-dns] [extra ferryd args...]
#                      (the agent serves cluster DNS on the node's LAN addresses, port 53,
#                       forwarding to the outside world's 198.18.64.1, unless the args
#                       name --dns-listen / --dns-upstream themselves, or --no-dns)
#   scripts/cluster.sh owner-alive P              -> exit 0 while the run's owner runs
#   scripts/cluster.sh stop-agent P NODE [SIGNAL]
#   scripts/cluster.sh info P                     -> shell assignments (eval-able)
#   scripts/cluster.sh selftest                   -> up, 3 pods, pings, down, leak check
#   scripts/cluster.sh outside-up P               -> the "outside world" netns P-out
#   scripts/cluster.sh outside-exec P cmd...
#   scripts/cluster.sh pod-resolv P NAME NAMESERVER [NAMESPACE] [DOMAIN]
#                      -> /etc/netns/P-pod-NAME/resolv.conf (Kubernetes search path, ndots:5)
#
# or source it and call the functions of the same name:
#   cluster_up, cluster_down, cluster_add_pod, cluster_del_pod, cluster_node_exec,
#   cluster_pod_exec, cluster_start_agent, cluster_stop_agent, cluster_info,
#   cluster_attach_lan_xdp, cluster_new_prefix, cluster_outside_up, cluster_outside_exec,
#   cluster_pod_resolv.
# The public functions run the implementation in a fresh `bash` process with
# `set -euo pipefail`, so they behave the same whatever the caller's shell
# options are (and even inside `if`/`||`, where bash would ignore `set -e`).
#
# Environment:
#   FERRY_PREFIX   prefix for `up` when none is given (default fy + 5 random hex)
#   FERRY_NODES    number of nodes (default 2)
#   FERRY_BUILD    build dir holding ferryd (default <repo>/build)
#   FERRYD         ferryd binary (default $FERRY_BUILD/ferryd)
#   FERRY_OWNER    pid of the process that owns a run brought `up` (default: the
#                  caller of cluster.sh); recorded with its start time in
#                  /tmp/ferry-P/owner. scripts/cleanup.sh removes a run only when
#                  that process is gone (or when given the run's prefix), and
#                  `down` removes only a run dir holding that marker.
#
# Names for prefix P (node i = 1..N):
#   netns        P-lan (bridge br0), P-ext, P-node<i>, P-pod-<name>
#   links        in P-lan: <P>n<i> (node ports), <P>ext; in nodes/ext/pods: eth0;
#                pod host side (in its node): <P><name> if <= 15 chars, else a
#                15-char name <P[0:7]><name[0:3]><5 hex of md5(P/name)>.
#   run dir      /tmp/ferry-P/{owner,bpffs (bpf fs mount),manifests,logs,pods,state-<node>}
#                agent: /tmp/ferry-P/<node>.{sock,log,pid}
#   cgroup2      $CG2/ferry-P-node<i>  (CG2 = the cgroup2 mount from /proc/mounts)
#
# Addresses (TESTNET.md): node i 198.18.0.(10+i)/24 + 2001:db8::(10+i)/64,
# ext 198.18.0.100/24 + 2001:db8::100/64, pod CIDR of node i 198.18.(128+i).0/24
# and 2001:db8:1:i::/64.
# Outside world (outside-up): netns P-out on the LAN bridge (link <P>out) with
# 198.18.64.1/24, 198.18.64.2/24 and 2001:db8:64::1/64, 2001:db8:64::2/64; every
# node gets an on-link route to 198.18.64.0/24 (2001:db8:64::/64), P-out routes
# to the LAN and to each node's pod CIDR via that node. A pod's resolv.conf
# (pod-resolv) is bind-mounted by `ip netns exec`; delpod and down remove it.

_FERRY_CLUSTER_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
_FERRY_ROOT="$(cd "$(dirname "$_FERRY_CLUSTER_SH")/.." && pwd)"

# ---------------------------------------------------------------- public API
cluster_new_prefix()     { "$BASH" "$_FERRY_CLUSTER_SH" new-prefix; }
cluster_up()             { "$BASH" "$_FERRY_CLUSTER_SH" up "$@"; }
cluster_down()           { "$BASH" "$_FERRY_CLUSTER_SH" down "$@"; }
cluster_add_pod()        { "$BASH" "$_FERRY_CLUSTER_SH" pod "$@"; }
cluster_del_pod()        { "$BASH" "$_FERRY_CLUSTER_SH" delpod "$@"; }
cluster_node_exec()      { "$BASH" "$_FERRY_CLUSTER_SH" node-exec "$@"; }
cluster_pod_exec()       { "$BASH" "$_FERRY_CLUSTER_SH" pod-exec "$@"; }
cluster_start_agent()    { "$BASH" "$_FERRY_CLUSTER_SH" start-agent "$@"; }
cluster_stop_agent()     { "$BASH" "$_FERRY_CLUSTER_SH" stop-agent "$@"; }
cluster_info()           { "$BASH" "$_FERRY_CLUSTER_SH" info "$@"; }
cluster_attach_lan_xdp() { "$BASH" "$_FERRY_CLUSTER_SH" attach-lan-xdp "$@"; }
cluster_outside_up()     { "$BASH" "$_FERRY_CLUSTER_SH" outside-up "$@"; }
cluster_outside_exec()   { "$BASH" "$_FERRY_CLUSTER_SH" outside-exec "$@"; }
cluster_pod_resolv()     { "$BASH" "$_FERRY_CLUSTER_SH" pod-resolv "$@"; }

# ---------------------------------------------------------------- helpers
_cl_die() { echo "cluster.sh: $*" >&2; exit 1; }
_cl_log() { echo "cluster.sh: $*" >&2; }

_cl_need_root() { [[ $(id -u) -eq 0 ]] || _cl_die "must run as root"; }

_cl_check_prefix() {
  local p=${1:-}
  [[ -n "$p" ]] || _cl_die "missing prefix P"
  [[ "$p" =~ ^[a-z][a-z0-9]{1,14}$ ]] || _cl_die "bad prefix '$p' (want [a-z][a-z0-9]{1,14})"
}

_cl_random_prefix() {
  local p i
  for i in $(seq 1 20); do
    p="fy$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)"
    if [[ ! -e "/tmp/ferry-$p" && ! -e "/run/netns/$p-lan" ]]; then
      echo "$p"; return 0
    fi
  done
  _cl_die "could not pick a free prefix"
}

# cgroup2 mount point (/sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid)
_cl_cg2() {
  local m
  m=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
  [[ -n "$m" ]] || _cl_die "no cgroup2 mount found in /proc/mounts"
  echo "$m"
}

_cl_run()   { echo "/tmp/ferry-$1"; }
_cl_nodes() { local n=${FERRY_NODES:-2} i; for ((i = 1; i <= n; i++)); do echo "node$i"; done; }

# node1 | 1 -> node1
_cl_node_name() {
  local n=${1:-}
  [[ "$n" =~ ^[0-9]+$ ]] && n="node$n"
  [[ "$n" =~ ^node([0-9]+)$ ]] || _cl_die "bad node '$1' (want nodeN or N)"
  echo "$n"
}
_cl_node_index() { local n; n=$(_cl_node_name "$1"); echo "${n#node}"; }

# interface name from prefix + suffix, <= 15 chars, deterministic
_cl_ifname() {
  local p=$1 s=$2 name="$1$2" h
  if ((${#name} <= 15)); then echo "$name"; return; fi
  h=$(printf '%s/%s' "$p" "$s" | md5sum | cut -c1-5)
  echo "${p:0:7}${s:0:3}$h"
}

_cl_ns_exists() { [[ -e "/run/netns/$1" ]]; }

_cl_sysctl() { # NS key=value...
  local ns=$1; shift
  ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# kill every process in a netns: TERM, wait up to ~3 s, then KILL
_cl_kill_netns_pids() {
  local ns=$1 pids i
  _cl_ns_exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [[ -z "$pids" ]] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 30); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for i in $(seq 1 20); do
    [[ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ]] && return 0
    sleep 0.1
  done
  _cl_log "warning: processes left in netns $ns: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
}

# true while PID runs (a zombie counts as gone)
_cl_pid_alive() {
  local pid=$1 st
  kill -0 "$pid" 2>/dev/null || return 1
  st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [[ "$st" != "Z" && "$st" != "X" ]]
}

# kill processes in a cgroup dir tree (TERM, bounded wait, KILL), then rmdir depth-first
_cl_rm_cgroup() {
  local dir=$1 pids i d
  [[ -d "$dir" ]] || return 0
  pids=$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
  if [[ -n "${pids// /}" ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 1 30); do
      pids=$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
      [[ -z "${pids// /}" ]] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [[ -n "${pids// /}" ]] && kill -KILL $pids 2>/dev/null || true
  fi
  for i in $(seq 1 30); do
    while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done < <(find "$dir" -depth -type d 2>/dev/null)
    [[ -d "$dir" ]] || return 0
    sleep 0.1
  done
  _cl_log "warning: could not remove cgroup $dir"
}

# umount every mount at or below DIR (deepest first)
_cl_umount_below() {
  local dir=$1 m i
  for i in $(seq 1 5); do
    m=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
    [[ -z "$m" ]] && return 0
    while IFS= read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done <<<"$m"
  done
  [[ -z "$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1' /proc/mounts)" ]] \
    || _cl_log "warning: mounts left under $dir"
}

_cl_ferryd() { echo "${FERRYD:-${FERRY_BUILD:-$_FERRY_ROOT/build}/ferryd}"; }

# start time of PID in clock ticks since boot (field 22 of /proc/PID/stat);
# empty when PID does not exist. With the pid it names one process for good.
_cl_start_time() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  st=${st##*) }   # the fields after "(comm)": field 3 (state) is the first
  # shellcheck disable=SC2086
  set -- $st
  echo "${20}"
}

# Records who owns run dir DIR: FERRY_OWNER (default: the caller of cluster.sh).
_cl_write_owner() {
  local dir=$1 pid=${FERRY_OWNER:-$PPID} start
  [[ "$pid" =~ ^[0-9]+$ ]] || _cl_die "FERRY_OWNER '$pid' is not a pid"
  start=$(_cl_start_time "$pid")
  [[ -n "$start" ]] || _cl_die "owner pid $pid does not exist"
  printf 'pid=%s\nstart=%s\ncmd=%s\n' "$pid" "$start" \
    "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)" >"$dir/owner.tmp"
  mv "$dir/owner.tmp" "$dir/owner"
}

# Exit status 0: the owner recorded in DIR/owner still runs; 1: it is gone
# (its pid no longer exists or now names a process started at another time);
# 2: DIR has no owner marker (not made by cluster.sh).
_cl_owner_state() {
  local dir=$1 pid start
  [[ -f "$dir/owner" ]] || return 2
  pid=$(sed -n 's/^pid=//p' "$dir/owner"); start=$(sed -n 's/^start=//p' "$dir/owner")
  [[ -n "$pid" && -n "$start" ]] || return 2
  [[ "$(_cl_start_time "$pid")" == "$start" ]] && return 0
  return 1
}

# ---------------------------------------------------------------- implementation
_cl_up() {
  _cl_need_root
  local P=${1:-${FERRY_PREFIX:-}}
  [[ -n "$P" ]] || P=$(_cl_random_prefix)
  _cl_check_prefix "$P"
  local RUN CG2 n i j lanif
  RUN=$(_cl_run "$P"); CG2=$(_cl_cg2)
  _cl_ns_exists "$P-lan" && _cl_die "cluster $P already exists"
  [[ -e "$RUN" ]] && _cl_die "$RUN already exists (another run's, or a leftover: scripts/cleanup.sh $P)"
  mkdir "$RUN"
  _cl_write_owner "$RUN"
  # tear down whatever was built if anything below fails (each CLI call is its own process)
  _CL_UP_P=$P
  trap 'rc=$?; if ((rc != 0)); then _cl_log "up failed, tearing down $_CL_UP_P"; _cl_down "$_CL_UP_P" || true; fi; exit $rc' EXIT

  mkdir -p "$RUN"/{bpffs,manifests,logs,pods}
  if ! awk -v d="$RUN/bpffs" '$2 == d && $3 == "bpf"' /proc/mounts | grep -q .; then
    mount -t bpf bpf "$RUN/bpffs"
  fi
  for n in $(_cl_nodes); do mkdir -p "$CG2/ferry-$P-$n" "$RUN/state-$n"; done

  # LAN: a bridge in its own netns
  ip netns add "$P-lan"
  ip -n "$P-lan" link set lo up
  ip -n "$P-lan" link add br0 type bridge
  ip -n "$P-lan" link set br0 up

  # sysctls of every endpoint namespace before links appear (defaults apply to new links)
  local base=(net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0)
  ip netns add "$P-ext"
  _cl_sysctl "$P-ext" "${base[@]}"
  for n in $(_cl_nodes); do
    ip netns add "$P-$n"
    _cl_sysctl "$P-$n" "${base[@]}" \
      net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
      net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
  done

  # ext
  lanif=$(_cl_ifname "$P" ext)
  ip -n "$P-lan" link add "$lanif" type veth peer name eth0 netns "$P-ext"
  ip -n "$P-lan" link set "$lanif" master br0 up
  ip -n "$P-ext" link set lo up
  ip -n "$P-ext" addr add 198.18.0.100/24 dev eth0
  ip -n "$P-ext" addr add 2001:db8::100/64 dev eth0 nodad
  ip -n "$P-ext" link set eth0 up
  _cl_wire "$P-ext"

  # nodes
  for n in $(_cl_nodes); do
    i=${n#node}
    lanif=$(_cl_ifname "$P" "n$i")
    ip -n "$P-lan" link add "$lanif" type veth peer name eth0 netns "$P-$n"
    ip -n "$P-lan" link set "$lanif" master br0 up
    ip -n "$P-$n" link set lo up
    ip -n "$P-$n" addr add "198.18.0.$((10 + i))/24" dev eth0
    ip -n "$P-$n" addr add "2001:db8::$((10 + i))/64" dev eth0 nodad
    ip -n "$P-$n" link set eth0 up
    _cl_wire "$P-$n"
    _cl_sysctl "$P-$n" net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth0.send_redirects=0
    ip -n "$P-$n" route add default via 198.18.0.1 dev eth0 onlink
    ip -n "$P-$n" -6 route add default via 2001:db8::1 dev eth0 onlink
    for j in $(_cl_nodes); do
      j=${j#node}
      [[ "$j" == "$i" ]] && continue
      ip -n "$P-$n" route add "198.18.$((128 + j)).0/24" via "198.18.0.$((10 + j))" dev eth0
      ip -n "$P-$n" -6 route add "2001:db8:1:$j::/64" via "2001:db8::$((10 + j))" dev eth0
    done
  done

  _cl_attach_lan_xdp "$P"
  trap - EXIT
  echo "$P"
}

# Hook: attach a pass-through (XDP_PASS) program to the LAN-side port of every
# node link in P-lan, so frames a node sends with XDP_TX are accepted (a veth
# drops XDP_TX frames unless its peer has an XDP program; see PLATFORM.md).
# Intentionally a no-op for now: it will load the project's pass-through object
# once bpf/ has one.
# Node ports on the LAN bridge get a pass-through XDP program: a veth drops
# frames its peer sends with XDP_TX unless it runs XDP itself (PLATFORM.md),
# and a real switch port accepts any frame. Without the object (not built
# yet) nothing is attached and XDP_TX towards the LAN will not work.
# LAN links stand for a wire: a NIC puts complete checksums on what it
# sends, while a veth passes a locally built packet on with only the
# pseudo-header sum (CHECKSUM_PARTIAL). XDP sees raw frames, as from a
# real NIC, so the test LAN must carry complete checksums too.
_cl_wire() {
  ip netns exec "$1" ethtool -K eth0 tx off >/dev/null
}

_cl_attach_lan_xdp() {
  local P=${1:-} obj i lanif
  obj="${FERRY_BUILD:-$_FERRY_ROOT/build}/bpf/xdp_pass.bpf.o"
  [[ -f "$obj" ]] || { _cl_log "no $obj: LAN ports left without XDP"; return 0; }
  for ((i = 1; i <= ${FERRY_NODES:-2}; i++)); do
    lanif=$(_cl_ifname "$P" "n$i")
    ip -n "$P-lan" link set dev "$lanif" xdpdrv obj "$obj" sec xdp
  done
  lanif=$(_cl_ifname "$P" ext)
  ip -n "$P-lan" link set dev "$lanif" xdpdrv obj "$obj" sec xdp
}

_cl_add_pod() {
  _cl_need_root
  local P=${1:-} NODE NAME=${3:-} IPS=${4:-auto}
  _cl_check_prefix "$P"
  NODE=$(_cl_node_name "${2:-}")
  [[ "$NAME" =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || _cl_die "bad pod name '$NAME' (want [a-z0-9-])"
  local RUN ns nodens host idx ip4="" ip6="" a x mac
  RUN=$(_cl_run "$P"); ns="$P-pod-$NAME"; nodens="$P-$NODE"
  idx=$(_cl_node_index "$NODE")
  _cl_ns_exists "$nodens" || _cl_die "no node netns $nodens (cluster up?)"
  _cl_ns_exists "$ns" && _cl_die "pod $NAME already exists"
  host=$(_cl_ifname "$P" "$NAME")
  ip -n "$nodens" link show "$host" >/dev/null 2>&1 && _cl_die "host-side name $host already taken"

  if [[ "$IPS" == auto ]]; then
    for x in $(seq 2 254); do
      a="198.18.$((128 + idx)).$x"
      grep -qsx "ip4=$a" "$RUN"/pods/* || { ip4=$a; break; }
    done
    [[ -n "$ip4" ]] || _cl_die "pod CIDR of $NODE is full"
    ip6="2001:db8:1:$idx::$x"   # TESTNET plan: node i's pod CIDR 2001:db8:1:i::/64, same host part
  else
    IFS=, read -r -a _ips <<<"$IPS"
    for a in "${_ips[@]}"; do
      if [[ "$a" == *:* ]]; then ip6=${a%/*}; else ip4=${a%/*}; fi
    done
  fi

  _CL_POD=("$P" "$NAME")
  trap 'rc=$?; if ((rc != 0)); then _cl_log "pod add failed, removing ${_CL_POD[1]}"; _cl_del_pod "${_CL_POD[@]}" || true; fi; exit $rc' EXIT
  mkdir -p "$RUN/pods"
  printf 'node=%s\nhost=%s\nip4=%s\nip6=%s\n' "$NODE" "$host" "$ip4" "$ip6" >"$RUN/pods/$NAME"
  ip netns add "$ns"
  _cl_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$ns" link set lo up
  ip -n "$nodens" link add "$host" type veth peer name eth0 netns "$ns"
  _cl_sysctl "$nodens" "net/ipv4/conf/$host/proxy_arp=1" "net/ipv4/conf/$host/rp_filter=0" \
    "net/ipv6/conf/$host/accept_dad=0"
  ip -n "$nodens" link set "$host" up
  mac=$(ip -n "$nodens" -o link show "$host" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  [[ -n "$mac" ]] || _cl_die "no MAC for $host"
  ip -n "$ns" link set eth0 up
  if [[ -n "$ip4" ]]; then
    ip -n "$ns" addr add "$ip4/32" dev eth0
    ip -n "$ns" route add default via 169.254.1.1 dev eth0 onlink
    ip -n "$ns" neigh replace 169.254.1.1 lladdr "$mac" dev eth0 nud permanent
    ip -n "$nodens" route add "$ip4/32" dev "$host"
  fi
  if [[ -n "$ip6" ]]; then
    ip -n "$ns" addr add "$ip6/128" dev eth0 nodad
    ip -n "$ns" -6 route add default via fe80::1 dev eth0
    ip -n "$ns" neigh replace fe80::1 lladdr "$mac" dev eth0 nud permanent
    ip -n "$nodens" -6 route add "$ip6/128" dev "$host"
  fi
  trap - EXIT
  echo "${ip4}${ip4:+${ip6:+,}}${ip6}"
}

_cl_del_pod() {
  _cl_need_root
  local P=${1:-} NAME=${2:-} RUN ns
  _cl_check_prefix "$P"
  [[ -n "$NAME" ]] || _cl_die "missing pod name"
  RUN=$(_cl_run "$P"); ns="$P-pod-$NAME"
  _cl_kill_netns_pids "$ns"
  if _cl_ns_exists "$ns"; then ip netns del "$ns"; fi   # takes the veth pair (and node route) with it
  rm -f "$RUN/pods/$NAME"
  rm -rf "/etc/netns/$ns"
}

_cl_node_exec() {
  local P=${1:-} NODE CG
  _cl_check_prefix "$P"
  NODE=$(_cl_node_name "${2:-}")
  shift 2
  (($# > 0)) || _cl_die "node-exec: missing command"
  CG="$(_cl_cg2)/ferry-$P-$NODE"
  [[ -d "$CG" ]] || _cl_die "no cgroup $CG"
  _cl_ns_exists "$P-$NODE" || _cl_die "no netns $P-$NODE"
  # nsenter keeps the host's mount namespace (bpffs, cgroup2 visible), unlike ip netns exec
  exec nsenter --net="/run/netns/$P-$NODE" \
    sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$CG" "$@"
}

_cl_pod_exec() {
  local P=${1:-} NAME=${2:-}
  _cl_check_prefix "$P"
  shift 2
  (($# > 0)) || _cl_die "pod-exec: missing command"
  _cl_ns_exists "$P-pod-$NAME" || _cl_die "no pod $NAME"
  exec ip netns exec "$P-pod-$NAME" "$@"
}

_cl_start_agent() {
  _cl_need_root
  local P=${1:-} NODE RUN CG2 bin pid i
  _cl_check_prefix "$P"
  NODE=$(_cl_node_name "${2:-}")
  shift 2
  RUN=$(_cl_run "$P"); CG2=$(_cl_cg2)
  bin=$(_cl_ferryd)
  [[ -x "$bin" ]] || _cl_die "no ferryd at $bin (build first, or set FERRY_BUILD/FERRYD)"
  # Every agent of a test cluster is its node's cluster DNS, and forwards
  # only inside the address plan (TESTNET.md: the outside world's server),
  # never to the machine's /etc/resolv.conf. Restarts keep it so.
  local a dns=1 listen=0 upstream=0 args=()
  for a in "$@"; do
    case "$a" in
      --no-dns) dns=0; continue ;;
      --dns-listen | --dns-listen=*) listen=1 ;;
      --dns-upstream | --dns-upstream=*) upstream=1 ;;
    esac
    args+=("$a")
  done
  i=$((10 + $(_cl_node_index "$NODE")))
  ((dns && !listen)) && args+=(--dns-listen "198.18.0.$i:53" --dns-listen "[2001:db8::$i]:53")
  ((!upstream)) && args+=(--dns-upstream 198.18.64.1)
  set -- "${args[@]}"
  _cl_ns_exists "$P-$NODE" || _cl_die "no netns $P-$NODE"
  if [[ -f "$RUN/$NODE.pid" ]] && _cl_pid_alive "$(cat "$RUN/$NODE.pid")"; then
    _cl_die "agent on $NODE already running (pid $(cat "$RUN/$NODE.pid"))"
  fi
  mkdir -p "$RUN/bpffs/$NODE" "$RUN/state-$NODE" "$RUN/manifests"
  rm -f "$RUN/$NODE.sock"
  nsenter --net="/run/netns/$P-$NODE" "$bin" \
    --manifests "$RUN/manifests" --node-name "$NODE" --service-cidr 198.19.0.0/16,2001:db8:ffff::/112 \
    --bpffs "$RUN/bpffs/$NODE" --socket "$RUN/$NODE.sock" --state-dir "$RUN/state-$NODE" \
    --cgroup "$CG2/ferry-$P-$NODE" "$@" \
    </dev/null >>"$RUN/$NODE.log" 2>&1 &
  pid=$!
  echo "$pid" >"$RUN/$NODE.pid"
  for i in $(seq 1 100); do   # up to 10 s
    [[ -S "$RUN/$NODE.sock" ]] && { echo "$pid"; return 0; }
    if ! _cl_pid_alive "$pid"; then
      _cl_log "ferryd on $NODE exited early; log tail:"; tail -n 20 "$RUN/$NODE.log" >&2 || true
      rm -f "$RUN/$NODE.pid"; exit 1
    fi
    sleep 0.1
  done
  _cl_log "ferryd on $NODE: no socket $RUN/$NODE.sock after 10 s; log tail:"
  tail -n 20 "$RUN/$NODE.log" >&2 || true
  exit 1
}

_cl_stop_agent() {
  local P=${1:-} NODE SIG=${3:-TERM} RUN pid i
  _cl_check_prefix "$P"
  NODE=$(_cl_node_name "${2:-}")
  RUN=$(_cl_run "$P")
  [[ -f "$RUN/$NODE.pid" ]] || return 0
  pid=$(cat "$RUN/$NODE.pid")
  if _cl_pid_alive "$pid"; then
    kill -s "$SIG" "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do   # up to 10 s, then KILL
      _cl_pid_alive "$pid" || break
      sleep 0.1
    done
    if _cl_pid_alive "$pid"; then
      _cl_log "ferryd on $NODE (pid $pid) ignored SIG$SIG for 10 s, killing"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 30); do _cl_pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$RUN/$NODE.pid"
}

_cl_down() {
  _cl_need_root
  local P=${1:-} RUN CG2 n ns bin f
  _cl_check_prefix "$P"
  RUN=$(_cl_run "$P"); CG2=$(_cl_cg2)
  set +e
  # agents first (graceful), then everything else in the cluster's netns
  for f in "$RUN"/*.pid; do
    [[ -f "$f" ]] || continue
    n=$(basename "$f" .pid)
    [[ "$n" =~ ^node[0-9]+$ ]] && _cl_stop_agent "$P" "$n"
  done
  local all_ns
  all_ns=$(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -F -- "$P-" | grep -E "^$P-" || true)
  for ns in $all_ns; do _cl_kill_netns_pids "$ns"; done
  # let ferryd remove its pins and detach its programs
  bin=$(_cl_ferryd)
  if [[ -x "$bin" ]]; then
    for ns in $all_ns; do
      [[ "$ns" =~ ^$P-(node[0-9]+)$ ]] || continue
      n=${BASH_REMATCH[1]}
      [[ -d "$RUN/bpffs/$n" ]] || continue
      timeout 20 nsenter --net="/run/netns/$ns" "$bin" --cleanup --node-name "$n" \
        --bpffs "$RUN/bpffs/$n" --cgroup "$CG2/ferry-$P-$n" >/dev/null 2>&1 \
        || _cl_log "warning: ferryd --cleanup failed for $n"
    done
  fi
  for ns in $all_ns; do
    ip netns del "$ns" 2>/dev/null || _cl_log "warning: could not delete netns $ns"
  done
  for f in /etc/netns/"$P"-*; do   # pods' resolv.conf (pod-resolv)
    [[ -d "$f" ]] && rm -rf "$f"
  done
  for f in "$CG2"/ferry-"$P"-*; do
    [[ -d "$f" ]] && _cl_rm_cgroup "$f"
  done
  if [[ -d "$RUN" ]]; then
    _cl_owner_state "$RUN"
    if (($? == 2)); then   # never remove what cluster.sh did not make
      _cl_log "warning: keeping $RUN: no owner marker, not made by cluster.sh up"
      return 0
    fi
    _cl_umount_below "$RUN"
    if [[ -z "$(awk -v d="$RUN" '$2 == d || index($2, d "/") == 1' /proc/mounts)" ]]; then
      rm -rf "$RUN"
    else
      _cl_log "warning: keeping $RUN (still has mounts)"
    fi
  fi
  return 0
}

_cl_info() {
  local P=${1:-} CG2 n
  _cl_check_prefix "$P"
  CG2=$(_cl_cg2)
  echo "FERRY_PREFIX=$P"
  echo "FERRY_RUN=$(_cl_run "$P")"
  echo "FERRY_BPFFS=$(_cl_run "$P")/bpffs"
  echo "FERRY_MANIFESTS=$(_cl_run "$P")/manifests"
  echo "FERRY_CGROUP2=$CG2"
  for n in $(_cl_nodes); do
    echo "FERRY_CGROUP_${n^^}=$CG2/ferry-$P-$n"
    echo "FERRY_SOCKET_${n^^}=$(_cl_run "$P")/$n.sock"
  done
}

# ---------------------------------------------------------------- outside world, pod DNS
_cl_outside_up() {
  _cl_need_root
  local P=${1:-} ns lanif n i
  _cl_check_prefix "$P"
  ns="$P-out"
  _cl_ns_exists "$P-lan" || _cl_die "no cluster $P (up first)"
  _cl_ns_exists "$ns" && _cl_die "outside world of $P already exists"
  _CL_OUT_NS=$ns
  trap 'rc=$?; if ((rc != 0)); then _cl_log "outside-up failed, removing $_CL_OUT_NS"; _cl_kill_netns_pids "$_CL_OUT_NS"; ip netns del "$_CL_OUT_NS" 2>/dev/null || true; fi; exit $rc' EXIT
  ip netns add "$ns"
  _cl_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  lanif=$(_cl_ifname "$P" out)
  ip -n "$P-lan" link add "$lanif" type veth peer name eth0 netns "$ns"
  ip -n "$P-lan" link set "$lanif" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add 198.18.64.1/24 dev eth0
  ip -n "$ns" addr add 198.18.64.2/24 dev eth0
  ip -n "$ns" addr add 2001:db8:64::1/64 dev eth0 nodad
  ip -n "$ns" addr add 2001:db8:64::2/64 dev eth0 nodad
  ip -n "$ns" link set eth0 up
  _cl_wire "$ns"
  ip -n "$ns" route add 198.18.0.0/24 dev eth0
  ip -n "$ns" -6 route add 2001:db8::/64 dev eth0
  for n in $(_cl_nodes); do
    i=${n#node}
    _cl_ns_exists "$P-$n" || continue
    ip -n "$ns" route add "198.18.$((128 + i)).0/24" via "198.18.0.$((10 + i))" dev eth0
    ip -n "$ns" -6 route add "2001:db8:1:$i::/64" via "2001:db8::$((10 + i))" dev eth0
    ip -n "$P-$n" route add 198.18.64.0/24 dev eth0
    ip -n "$P-$n" -6 route add 2001:db8:64::/64 dev eth0
  done
  trap - EXIT
}

_cl_outside_exec() {
  local P=${1:-}
  _cl_check_prefix "$P"
  shift
  (($# > 0)) || _cl_die "outside-exec: missing command"
  _cl_ns_exists "$P-out" || _cl_die "no outside world for $P (outside-up first)"
  exec ip netns exec "$P-out" "$@"
}

# /etc/netns/P-pod-NAME/resolv.conf: what the kubelet writes for a ClusterFirst pod
_cl_pod_resolv() {
  _cl_need_root
  local P=${1:-} NAME=${2:-} NS_IP=${3:-} PODNS=${4:-default} DOMAIN=${5:-cluster.local} dir
  _cl_check_prefix "$P"
  _cl_ns_exists "$P-pod-$NAME" || _cl_die "no pod $NAME"
  [[ -n "$NS_IP" ]] || _cl_die "pod-resolv: missing nameserver"
  dir="/etc/netns/$P-pod-$NAME"
  mkdir -p "$dir"
  printf 'search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n' \
    "$PODNS" "$DOMAIN" "$DOMAIN" "$DOMAIN" "$NS_IP" >"$dir/resolv.conf"
}

# ---------------------------------------------------------------- self test
_cl_selftest() {
  _cl_need_root
  local P fail=0
  P=$(_cl_random_prefix)
  _CL_ST_P=$P
  trap 'cluster_down "$_CL_ST_P"' EXIT
  cluster_up "$P" >/dev/null
  cluster_add_pod "$P" node1 a auto >/dev/null            # 198.18.129.2
  cluster_add_pod "$P" node1 b 198.18.129.3,2001:db8:1:1::3 >/dev/null
  cluster_add_pod "$P" node2 c 198.18.130.2,2001:db8:1:2::2 >/dev/null
  _ping() { # from-kind from-name dst
    local out
    if [[ $1 == pod ]]; then out=$(ip netns exec "$P-pod-$2" ping -c1 -W2 "$3" 2>&1)
    else out=$(ip netns exec "$P-$2" ping -c1 -W2 "$3" 2>&1); fi
    if [[ $? -eq 0 ]]; then echo "ok   $1 $2 -> $3"; else echo "FAIL $1 $2 -> $3"; echo "$out" | sed 's/^/     /'; fail=1; fi
  }
  set +e
  _ping pod a 198.18.129.3
  _ping pod a 198.18.130.2
  _ping pod c 198.18.129.2
  _ping pod b 2001:db8:1:2::2
  _ping pod c 2001:db8:1:1::3
  _ping pod a 198.18.0.12
  _ping ns ext 198.18.0.11
  _ping ns ext 198.18.0.12
  _ping ns ext 2001:db8::11
  _ping ns node1 198.18.130.2
  # node-exec lands in the node netns and cgroup
  local cgl
  cgl=$(cluster_node_exec "$P" node1 cat /proc/self/cgroup | grep '^0::')
  if [[ "$cgl" == "0::/ferry-$P-node1" ]]; then echo "ok   node-exec cgroup $cgl"; else echo "FAIL node-exec cgroup '$cgl'"; fail=1; fi
  cluster_del_pod "$P" b
  _cl_ns_exists "$P-pod-b" && { echo "FAIL delpod"; fail=1; }
  set -e
  trap - EXIT
  cluster_down "$P"
  local left
  left="$(ip netns list | grep -E "^$P-" || true)$(grep -F "/tmp/ferry-$P" /proc/mounts || true)$(ls -d "$(_cl_cg2)"/ferry-"$P"-* 2>/dev/null || true)$(ls -d "/tmp/ferry-$P" 2>/dev/null || true)"
  if [[ -n "$left" ]]; then echo "FAIL leftovers: $left"; fail=1; else echo "ok   nothing left after down"; fi
  ((fail == 0)) && echo "selftest passed" || { echo "selftest FAILED"; return 1; }
}

_cl_usage() {
  sed -n '2,/^$/p' "$_FERRY_CLUSTER_SH" | sed 's/^# \{0,1\}//'
}

_cl_main() {
  set -euo pipefail
  local cmd=${1:-}
  (($# > 0)) && shift
  case "$cmd" in
    up) _cl_up "$@" ;;
    down) _cl_down "$@" ;;
    pod | add-pod) _cl_add_pod "$@" ;;
    delpod | del-pod) _cl_del_pod "$@" ;;
    node-exec) _cl_node_exec "$@" ;;
    pod-exec) _cl_pod_exec "$@" ;;
    start-agent) _cl_start_agent "$@" ;;
    stop-agent) _cl_stop_agent "$@" ;;
    info) _cl_info "$@" ;;
    attach-lan-xdp) _cl_attach_lan_xdp "$@" ;;
    outside-up) _cl_outside_up "$@" ;;
    outside-exec) _cl_outside_exec "$@" ;;
    pod-resolv) _cl_pod_resolv "$@" ;;
    new-prefix) _cl_random_prefix ;;
    owner-alive) _cl_check_prefix "${1:-}"; _cl_owner_state "$(_cl_run "$1")" ;;
    selftest) _cl_selftest ;;
    -h | --help | help) _cl_usage ;;
    *) _cl_usage >&2; exit 2 ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  _cl_main "$@"
fi
