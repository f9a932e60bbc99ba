#!/usr/bin/env bash
# ferry demo: installs dependencies if missing, builds, starts a two-node
# netns cluster with ferryd on each node and the seed note's services,
# and shows them working. Everything is removed on exit.
#   scripts/demo.sh [--keep]   (--keep: leave the cluster up; remove it
#                               later with scripts/cluster.sh down PREFIX)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run as root (BPF programs and network namespaces)" >&2
  exit 1
fi

T0=$(date +%s)
# Only what the demo runs: the agent, the CLI, the test backend and the LAN
# ports' pass-through XDP object (scripts/test.sh builds the rest). A first
# build from nothing takes about 4 minutes on 2 cores (README, Quick start).
echo "demo.sh: building ferryd, ferryctl, ferry-echo (a line per finished target, at least one every 30 s)"
BUILD_QUIET=1 "$ROOT/scripts/build.sh" --target ferryd --target ferryctl --target ferry-echo \
  --target xdp_pass_skel
B="$ROOT/build"
C="$ROOT/scripts/cluster.sh"

P=$("$C" new-prefix)
cleanup() { ((KEEP)) || "$C" down "$P" >/dev/null 2>&1 || true; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m  (%d s)\n' "$*" "$(($(date +%s) - T0))"; }
# until CMD succeeds, every 0.1 s, at most SECONDS s: wait_for SECONDS CMD...
wait_for() {
  local n=$(($1 * 10)); shift
  while ((n-- > 0)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo.sh: gave up waiting for: $*" >&2
  return 1
}
# Every agent is its node's cluster DNS (forwarding to the outside world's
# server, inside the address plan), also after a restart.
agent() { "$C" start-agent "$P" "$1" --dns-listen "$2:53" --dns-upstream 198.18.64.1 >/dev/null; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Cluster $P: two nodes, three web pods and a test pod (netns + veth)"
"$C" up "$P" >/dev/null
# (each pod has an IPv6 address too, for the dual-stack service at the end)
"$C" pod "$P" node1 web-1 198.18.129.2,2001:db8:1:1::2 >/dev/null
"$C" pod "$P" node1 web-2 198.18.129.3,2001:db8:1:1::3 >/dev/null
"$C" pod "$P" node2 web-3 198.18.130.2,2001:db8:1:2::2 >/dev/null
"$C" pod "$P" node1 test 198.18.129.4,2001:db8:1:1::4 >/dev/null
for p in web-1 web-2 web-3; do
  "$C" pod-exec "$P" "$p" "$B/ferry-echo" serve --name "$p" --tcp 8080 >/dev/null 2>&1 &
done
RUN=/tmp/ferry-$P
# The "outside world" (198.18.64.0/24): a DNS server for example.test and
# the HTTP server httpbin.example.test that the ExternalName points at.
"$C" outside-up "$P" >/dev/null
mkdir -p "$RUN/outside-www"
echo "hello from httpbin.example.test, outside the cluster" >"$RUN/outside-www/get"
"$C" outside-exec "$P" setsid -f dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
  --no-hosts --pid-file= --user=root --bind-interfaces --listen-address=198.18.64.1 --port=53 \
  --local=/example.test/ --host-record=httpbin.example.test,198.18.64.2 >/dev/null 2>&1
"$C" outside-exec "$P" setsid -f python3 -m http.server 80 --bind 198.18.64.2 \
  --directory "$RUN/outside-www" >/dev/null 2>&1
cp "$ROOT"/scripts/demo-manifests/{pods,services,kube-dns,pool}.yaml "$RUN/manifests/"
agent node1 198.18.0.11
agent node2 198.18.0.12
"$C" pod-resolv "$P" test 198.19.0.10 >/dev/null
CTL=("$B/ferryctl" --socket "$RUN/node1.sock")
svc_has() { "${CTL[@]}" get services -o json | jq -e "$1" >/dev/null; }
wait_for 10 svc_has '[.items[] | select(.metadata.name == "web-lb") | .status.loadBalancer.ingress[0].ip] | length == 1'

step "ferryctl get services (the seed's four types; ClusterIPs allocated from 198.19.0.0/16)"
show "${CTL[@]}" get services -o wide
echo "(the pool 'lan' has one address: web-lb got it, web-lb-2 waits <pending>)"

step "ferryctl get endpoints"
show "${CTL[@]}" get endpoints

VIP=$("${CTL[@]}" get services web -o json | jq -r .spec.clusterIP)
step "From pod 'test' to web ($VIP:80): six connections, balanced; each pod sees the client's own IP"
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$VIP" 80 --count 6
echo "(reply line: <pod that answered> <client address it saw> <its own address>)"

step "From node1 itself (socket-level hook): getpeername() shows the ClusterIP"
show "$C" node-exec "$P" node1 "$B/ferry-echo" ask tcp "$VIP" 80 --show-peer

step "From node2 (the other agent allocated the same ClusterIP)"
show "$C" node-exec "$P" node2 "$B/ferry-echo" ask tcp "$VIP" 80

step "From the external client 198.18.0.100 through each node's NodePort 32618 (XDP on eth0)"
for node_ip in 198.18.0.11 198.18.0.12; do
  show ip netns exec "$P-ext" "$B/ferry-echo" ask tcp "$node_ip" 32618 --count 4
done
echo "(pods on the node that was asked see the client's own address; pods on the other node see"
echo " that node's address: externalTrafficPolicy Cluster source-NATs traffic it sends on)"

step "Cluster DNS (ferryd answers; pods reach it at the kube-dns ClusterIP 198.19.0.10)"
show "$C" pod-exec "$P" test cat /etc/resolv.conf
show "$C" pod-exec "$P" test dig +search +short web
show "$C" pod-exec "$P" test dig +search +short httpbin
echo "By short name, through the ClusterIP service 'web':"
show "$C" pod-exec "$P" test python3 -c \
  'import socket; print(socket.create_connection(("web", 80), timeout=3).recv(200).decode().strip())'
echo "By short name, through the ExternalName service 'httpbin' (CNAME to httpbin.example.test):"
show "$C" pod-exec "$P" test curl -sS --max-time 5 http://httpbin/get

LBIP=$("${CTL[@]}" get services web-lb -o json | jq -r '.status.loadBalancer.ingress[0].ip')
step "LoadBalancer web-lb at $LBIP: one node answers ARP for it (no interface has it)"
ip -n "$P-ext" neigh flush all
show ip netns exec "$P-ext" "$B/ferry-echo" ask tcp "$LBIP" 8080 --count 3
show ip -n "$P-ext" neigh show "$LBIP"
for n in node1 node2; do
  printf '%s eth0: %s\n' "$n" "$(ip -n "$P-$n" -br link show eth0 | awk '{print $3}')"
done
echo "Growing the pool to two addresses: web-lb-2 gets the second one"
sed -i 's|198.18.0.200/32|198.18.0.200-198.18.0.201|' "$RUN/manifests/pool.yaml"
wait_for 10 svc_has '[.items[] | select(.metadata.name == "web-lb-2") | .status.loadBalancer.ingress[0].ip] | length == 1'
show "${CTL[@]}" get services

NOBODY=$("${CTL[@]}" get services nobody -o json | jq -r .spec.clusterIP)
step "A service without endpoints is refused at once (no timeout)"
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$NOBODY" 80 || true

step "A broken manifest is reported with file, object and field; the rest keeps working"
cp "$ROOT/scripts/demo-manifests/broken.yaml" "$RUN/manifests/"
wait_for 10 bash -c '"$@" get errors | grep -q broken.yaml' _ "${CTL[@]}"
show "${CTL[@]}" get errors
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$VIP" 80

step "Restart ferryd on node1 (kill -9) while a connection stays open"
"$C" pod-exec "$P" test "$B/ferry-echo" hold tcp "$VIP" 80 --seconds 4 2>/dev/null &
HOLD=$!
wait_for 5 bash -c '[[ -n $("$@" ss -Htn state established "( dport = :80 )") ]]' _ "$C" pod-exec "$P" test
PID1=$(cat "$RUN/node1.pid")
kill -9 "$PID1"
gone() { [[ ! -e /proc/$1 || "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" == Z ]]; }
wait_for 5 gone "$PID1"
echo "ferryd on node1 killed; maps stay pinned, programs stay attached"
agent node1 198.18.0.11
echo "ferryd on node1 restarted (with its DNS listener)"
printf 'held connection: '
wait "$HOLD" && true
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$VIP" 80

step "Every node's agent answers DNS (node1's restarted agent too)"
for ip in 198.18.0.11 198.18.0.12; do
  show "$C" pod-exec "$P" test dig +time=2 +tries=1 +short "@$ip" web.default.svc.cluster.local
done

step "A dual-stack service: web-ds has a ClusterIP of each family; the same pods answer over both"
cp "$ROOT/scripts/demo-manifests/dual-stack.yaml" "$RUN/manifests/"
wait_for 10 svc_has '[.items[] | select(.metadata.name == "web-ds") | .spec.clusterIPs[]] | length == 2'
printf '$ %s\n' "${CTL[*]} get services web-ds -o json | jq -c .spec.clusterIPs"
"${CTL[@]}" get services web-ds -o json | jq -c .spec.clusterIPs
DS4=$("${CTL[@]}" get services web-ds -o json | jq -r '.spec.clusterIPs[0]')
DS6=$("${CTL[@]}" get services web-ds -o json | jq -r '.spec.clusterIPs[1]')
wait_for 10 "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$DS6" 80
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$DS4" 80 --count 3
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$DS6" 80 --count 3
show "$C" node-exec "$P" node1 "$B/ferry-echo" ask tcp "$DS6" 80 --show-peer
echo "(over IPv6 the pods see the test pod's IPv6 address, or node1's from node1's own socket)"

step "Dataplane counters on node1"
show "${CTL[@]}" stats

if ((KEEP)); then
  echo
  echo "Cluster left up. Try: $C pod-exec $P test $B/ferry-echo ask tcp $VIP 80"
  echo "Remove it with: $C down $P"
fi
echo "demo.sh: done in $(($(date +%s) - T0)) s"
