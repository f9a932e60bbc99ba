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

"$ROOT/scripts/build.sh" >/tmp/ferry-demo-build.log 2>&1 || {
  tail -30 /tmp/ferry-demo-build.log
  exit 1
}
B="$ROOT/build"
C="$ROOT/scripts/cluster.sh"

P=$("$C" new-prefix)
cleanup() { ((KEEP)) || "$C" down "$P" >/dev/null 2>&1 || true; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Cluster $P: two nodes, three web pods and a test pod (netns + veth)"
"$C" up "$P" >/dev/null
"$C" pod "$P" node1 web-1 198.18.129.2 >/dev/null
"$C" pod "$P" node1 web-2 198.18.129.3 >/dev/null
"$C" pod "$P" node2 web-3 198.18.130.2 >/dev/null
"$C" pod "$P" node1 test 198.18.129.4 >/dev/null
for p in web-1 web-2 web-3; do
  "$C" pod-exec "$P" "$p" "$B/ferry-echo" serve --name "$p" --tcp 8080 >/dev/null 2>&1 &
done
RUN=/tmp/ferry-$P
cp "$ROOT"/scripts/demo-manifests/pods.yaml "$ROOT"/scripts/demo-manifests/services.yaml "$RUN/manifests/"
"$C" start-agent "$P" node1 >/dev/null
"$C" start-agent "$P" node2 >/dev/null
CTL=("$B/ferryctl" --socket "$RUN/node1.sock")
sleep 0.5

step "ferryctl get services (the seed's four types; ClusterIPs allocated from 198.19.0.0/16)"
show "${CTL[@]}" get services -o wide
echo "(NodePort forwarding, LoadBalancer addresses and DNS for ExternalName come with the next issues;"
echo " today every ClusterIP, including those of the NodePort and LoadBalancer services, is served.)"

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

NOBODY=$("${CTL[@]}" get services nobody -o json | jq -r .spec.clusterIP)
step "A service without endpoints is refused at once (no timeout)"
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$NOBODY" 80 || true

step "A broken manifest is reported with file, object and field; the rest keeps working"
cp "$ROOT/scripts/demo-manifests/broken.yaml" "$RUN/manifests/"
sleep 0.5
show "${CTL[@]}" get errors
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$VIP" 80

step "Restart ferryd on node1 (kill -9) while a connection stays open"
"$C" pod-exec "$P" test "$B/ferry-echo" hold tcp "$VIP" 80 --seconds 4 2>/dev/null &
HOLD=$!
sleep 1
kill -9 "$(cat "$RUN/node1.pid")"
echo "ferryd on node1 killed; maps stay pinned, programs stay attached"
sleep 1
"$C" start-agent "$P" node1 >/dev/null
echo "ferryd on node1 restarted"
printf 'held connection: '
wait "$HOLD" && true
show "$C" pod-exec "$P" test "$B/ferry-echo" ask tcp "$VIP" 80

step "Dataplane counters on node1"
show "${CTL[@]}" stats

if ((KEEP)); then
  echo
  echo "Cluster left up. Try: $C pod-exec $P test $B/ferry-echo ask tcp $VIP 80"
  echo "Remove it with: $C down $P"
fi
