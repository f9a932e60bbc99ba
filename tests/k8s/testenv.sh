#!/usr/bin/env bash
# A test Kubernetes API server in a network namespace of its own.
#   tests/k8s/testenv.sh up DIR NETNS [apiserver.py args...]
#       creates NETNS (loopback up, 198.18.0.2/32 on lo), a per-run PKI in DIR
#       (gen-certs.sh), starts tests/k8s/apiserver.py on https://198.18.0.2:6443
#       inside it (pid DIR/server.pid, log DIR/server.log, state DIR/state.json)
#       and writes
#         DIR/kubeconfig        token "test-token" (user "ferry-test")
#         DIR/kubeconfig-cert   the client certificate (user system:node:test)
#       the server accepts tokens test-token and, for RBAC tests, "viewer-token"
#       (user "viewer"); fault endpoints are on (--faults).
#   tests/k8s/testenv.sh lan-up DIR P [args...]
#       the same on a test cluster's LAN (TESTNET.md): the server runs in the
#       cluster's P-lan netns with 198.18.0.2/24 on its bridge br0, so agents
#       in P-node<i> reach https://198.18.0.2:6443 over their eth0
#   tests/k8s/testenv.sh lan-down DIR P              stop it, remove the address and DIR
#   tests/k8s/testenv.sh start DIR NETNS [args...]   start the server again (state kept)
#   tests/k8s/testenv.sh stop DIR                    SIGTERM the server, wait (state saved)
#   tests/k8s/testenv.sh down DIR NETNS              stop, delete NETNS and DIR
# Only what this script created is removed: the server by its pid file, the
# netns by name.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ADDR=198.18.0.2
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

cmd=${1:?usage: testenv.sh up|start|stop|down DIR NETNS}; shift
dir=${1:?missing DIR}; shift

start() {
  local ns=$1; shift
  rm -f "$dir/ready"
  cp "$dir/args" "$dir/args.last" 2>/dev/null || true
  printf '%q ' "$@" > "$dir/args"
  setsid ip netns exec "$ns" "$PY" "$HERE/apiserver.py" --listen "$ADDR" --port 6443 \
    --cert "$dir/server.crt" --key "$dir/server.key" --client-ca "$dir/ca.crt" \
    --token test-token=ferry-test --token viewer-token=viewer \
    --faults --state "$dir/state.json" --ready-file "$dir/ready" "$@" \
    </dev/null >>"$dir/server.log" 2>&1 &
  echo $! > "$dir/server.pid"
  for _ in $(seq 100); do
    [[ -s $dir/ready ]] && return 0
    kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "testenv.sh: the API server did not start; log:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}

alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

stop() {
  [[ -f $dir/server.pid ]] || return 0
  local pid; pid=$(cat "$dir/server.pid")
  kill -TERM "$pid" 2>/dev/null || true
  # gone, or a zombie waiting for whoever adopted it to reap it
  for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/server.pid"
}

kubeconfig() {  # file user-yaml
  cat > "$1" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://$ADDR:6443
    certificate-authority-data: $(base64 -w0 < "$dir/ca.crt")
users:
- name: test
  user:
$2
contexts:
- name: test
  context:
    cluster: test
    user: test
    namespace: default
current-context: test
EOK
}

pki() {
    "$HERE/gen-certs.sh" "$dir/pki" "$ADDR"
    cp "$dir/pki/"{ca.crt,server.crt,server.key} "$dir/"
    kubeconfig "$dir/kubeconfig" "    token: test-token"
    kubeconfig "$dir/kubeconfig-cert" "    client-certificate-data: $(base64 -w0 < "$dir/pki/client.crt")
    client-key-data: $(base64 -w0 < "$dir/pki/client.key")"
}

case $cmd in
  up)
    ns=${1:?missing NETNS}; shift
    mkdir -p "$dir"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$ADDR/32" dev lo
    pki
    start "$ns" "$@"
    ;;
  lan-up)
    p=${1:?missing cluster prefix P}; shift
    [[ -e /run/netns/$p-lan ]] || { echo "testenv.sh: no cluster $p (scripts/cluster.sh up first)" >&2; exit 1; }
    mkdir -p "$dir"
    ip -n "$p-lan" addr add "$ADDR/24" dev br0 2>/dev/null || true
    pki
    start "$p-lan" "$@"
    ;;
  lan-down)
    p=${1:?missing cluster prefix P}
    stop
    ip -n "$p-lan" addr del "$ADDR/24" dev br0 2>/dev/null || true
    rm -rf "$dir"
    ;;
  start) ns=${1:?missing NETNS}; shift; start "$ns" "$@" ;;
  stop) stop ;;
  down)
    ns=${1:-}
    stop
    [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "testenv.sh: unknown command $cmd" >&2; exit 2 ;;
esac
