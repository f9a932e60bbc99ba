#!/usr/bin/env bash
# Fidelity of the test API server (tests/k8s/apiserver.py), checked with the
# real kubectl: apply -f (create, unchanged, configured), get -o json,
# get --watch (sees a change), delete, errors (NotFound, Unauthorized), client
# certificates, and the status PATCH as kubectl sends it (checked with curl).
#   tests/k8s/kubectl_fidelity_test.sh SRCDIR
# kubectl: the one on PATH (scripts/deps.sh installs Debian's
# kubernetes-client, kubectl 1.20, when there is none); FERRY_EXTRA_KUBECTL
# (space-separated paths) names more binaries to check; unset, Debian's 1.20
# (kubernetes-client) is unpacked for the run (tests/k8s/kubectl-compat.sh).
# Everything runs inside a network namespace this script creates under a
# per-run prefix, removed on exit.
set -euo pipefail
SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
HERE=$SRC/tests/k8s
[[ $(id -u) -eq 0 ]] || { echo "kubectl_fidelity_test: needs root (netns)"; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl_fidelity_test: no kubectl on PATH (scripts/deps.sh installs kubernetes-client)"; exit 1; }

P=${FERRY_PREFIX:-$("$SRC/scripts/cluster.sh" new-prefix)}
NS=$P-kf
DIR=$(mktemp -d /tmp/ferry-$P-kf.XXXXXX)
trap '"$HERE/testenv.sh" down "$DIR" "$NS" >/dev/null 2>&1 || true' EXIT
"$HERE/testenv.sh" up "$DIR" "$NS" --bookmark-interval 1

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() {  # description, then a command that must succeed
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
in_ns() { ip netns exec "$NS" "$@"; }
API=https://198.18.0.2:6443
curl_api() { in_ns curl -sS --max-time 10 --cacert "$DIR/ca.crt" -H "Authorization: Bearer test-token" "$@"; }

run_suite() {
  local kc=$1 v
  v=$("$kc" version --client -o json 2>/dev/null | jq -r .clientVersion.gitVersion)
  echo "== kubectl $kc ($v)"
  K() { in_ns timeout 30 "$kc" --kubeconfig "$DIR/kubeconfig" "$@"; }
  local M=$DIR/web.yaml out
  cp "$HERE/manifests/web.yaml" "$M"

  out=$(K apply --validate=false -f "$M" 2>&1) || true
  check "$v apply creates: $(echo $out)" grep -q 'service/web created' <<<"$out"
  check "$v apply creates the EndpointSlice" grep -q 'endpointslice.discovery.k8s.io/web-abc12 created' <<<"$out"
  check "$v apply creates the Lease" grep -q 'lease.coordination.k8s.io/ferry-lb-writer created' <<<"$out"
  out=$(K apply --validate=false -f "$M" 2>&1) || true
  check "$v apply again: unchanged" grep -q 'service/web unchanged' <<<"$out"

  local js
  js=$(K get -n shop svc web -o json) || { echo "kubectl get failed: $?"; K get -n shop svc web -o json -v6 2>&1 | tail -5; }
  check "$v get -o json: ClusterIP allocated from 198.19.0.0/16" \
    grep -q '^198\.19\.' <<<"$(jq -r .spec.clusterIP <<<"$js")"
  check "$v get -o json: NodePorts allocated" \
    test "$(jq '[.spec.ports[].nodePort | select(. >= 30000 and . <= 32767)] | length' <<<"$js")" = 2
  check "$v get -o json: last-applied annotation" \
    test "$(jq -r '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"] | fromjson | .spec.ports | length' <<<"$js")" = 2
  local np443
  np443=$(jq '.spec.ports[] | select(.port == 443) | .nodePort' <<<"$js")

  # a changed manifest: port 80 -> 8000, https kept, a label added (strategic merge by port)
  sed -i 's/    port: 80$/    port: 8000/; s/  labels: {app: web}/  labels: {app: web, tier: front}/' "$M"
  out=$(K apply --validate=false -f "$M" 2>&1) || true
  check "$v apply a change: configured" grep -q 'service/web configured' <<<"$out"
  js=$(K get -n shop svc web -o json) || { echo "kubectl get failed: $?"; K get -n shop svc web -o json -v6 2>&1 | tail -5; }
  check "$v apply merged the ports by port" \
    test "$(jq -c '[.spec.ports[].port] | sort' <<<"$js")" = "[443,8000]"
  check "$v apply kept the https NodePort" \
    test "$(jq '.spec.ports[] | select(.port == 443) | .nodePort' <<<"$js")" = "$np443"
  check "$v apply added the label" test "$(jq -r .metadata.labels.tier <<<"$js")" = front
  js=$(K get -n shop endpointslices -o json)
  check "$v get list -o json: the slice's endpoints" \
    test "$(jq -c '[.items[0].endpoints[].conditions.ready]' <<<"$js")" = "[true,false]"

  # get --watch: bounded by timeout; a label change must show up as an event
  local wout=$DIR/watch.out
  ip netns exec "$NS" timeout 30 "$kc" --kubeconfig "$DIR/kubeconfig" \
    get -n shop svc web --watch -o json >"$wout" 2>&1 &
  local wpid=$!
  local seen=0
  for _ in $(seq 50); do grep -q '"name": "web"' "$wout" 2>/dev/null && break; sleep 0.1; done
  K label -n shop svc web watched=yes >/dev/null
  for _ in $(seq 50); do
    if grep -q '"watched": "yes"' "$wout"; then seen=1; break; fi
    sleep 0.1
  done
  check "$v get --watch sees the label change" test $seen = 1
  check "$v get --watch used a watch request from a resourceVersion" \
    test "$(curl_api $API/_test/requests | jq '[.[] | select(.query.watch != null and .query.resourceVersion != null and .path == "/api/v1/namespaces/shop/services")] | length')" -ge 1
  kill "$wpid" 2>/dev/null || true   # timeout(1) passes the signal on to kubectl
  wait "$wpid" 2>/dev/null || true

  # the status PATCH as kubectl sends it (merge patch on the status subresource)
  local code
  code=$(curl_api -o "$DIR/patch.out" -w '%{http_code}' -X PATCH \
    -H 'Content-Type: application/merge-patch+json' -H 'Accept: application/json' \
    --data '{"status":{"loadBalancer":{"ingress":[{"ip":"198.18.0.200"}]}},"spec":{"type":"ClusterIP"}}' \
    "$API/api/v1/namespaces/shop/services/web/status")
  check "$v status PATCH: 200" test "$code" = 200
  js=$(K get -n shop svc web -o json) || { echo "kubectl get failed: $?"; K get -n shop svc web -o json -v6 2>&1 | tail -5; }
  check "$v status PATCH: ingress visible to kubectl" \
    test "$(jq -r '.status.loadBalancer.ingress[0].ip' <<<"$js")" = 198.18.0.200
  check "$v status PATCH: spec untouched by a status write" test "$(jq -r .spec.type <<<"$js")" = LoadBalancer
  # kubectl patch --subresource exists only from 1.24; kubectl patch of the main
  # resource must not touch the status
  K patch -n shop svc web --type merge -p '{"status":{"loadBalancer":{}},"metadata":{"labels":{"p":"1"}}}' >/dev/null
  js=$(K get -n shop svc web -o json) || { echo "kubectl get failed: $?"; K get -n shop svc web -o json -v6 2>&1 | tail -5; }
  check "$v patch of the main resource keeps the status" \
    test "$(jq -r '.status.loadBalancer.ingress[0].ip' <<<"$js")/$(jq -r .metadata.labels.p <<<"$js")" = 198.18.0.200/1

  # errors kubectl users see
  out=$(K get -n shop svc nosuch 2>&1) && bad "$v get of a missing service fails" || \
    check "$v NotFound: $out" grep -q 'Error from server (NotFound): services "nosuch" not found' <<<"$out"
  out=$(in_ns timeout 30 "$kc" --kubeconfig "$DIR/kubeconfig" --token wrong get svc 2>&1) && bad "$v wrong token fails" || \
    check "$v wrong token: $out" grep -q 'Unauthorized' <<<"$out"
  out=$(in_ns timeout 30 "$kc" --kubeconfig "$DIR/kubeconfig-cert" get -n shop lease ferry-lb-writer -o json 2>&1) || true
  check "$v client certificate: get lease" test "$(jq -r .spec.holderIdentity <<<"$out" 2>/dev/null)" = node1

  out=$(K get -n shop svc web 2>&1)
  check "$v get svc shows TYPE and PORT(S): $(echo $out)" grep -Eq 'web +LoadBalancer +198\.19\.[0-9.]+ +198\.18\.0\.200 +8000:[0-9]+/TCP,443:[0-9]+/TCP' <<<"$out"

  out=$(K delete -f "$M" 2>&1) || true
  check "$v delete -f: $(echo $out)" grep -q 'service "web" deleted' <<<"$out"
  check "$v delete -f: the slice" grep -q 'endpointslice.discovery.k8s.io "web-abc12" deleted' <<<"$out"
  for _ in $(seq 50); do K get ns shop >/dev/null 2>&1 || break; sleep 0.1; done
  out=$(K get -n shop svc,endpointslices,leases -o name 2>&1) || true
  check "$v delete removed everything: '$out'" test -z "$out"
  check "$v the namespace is gone" bash -c "! ip netns exec $NS $kc --kubeconfig $DIR/kubeconfig get ns shop >/dev/null 2>&1"
}

# Debian's kubectl 1.20 too, unless told otherwise (FERRY_EXTRA_KUBECTL set,
# even empty, replaces it)
if [[ -z ${FERRY_EXTRA_KUBECTL+x} ]]; then
  FERRY_EXTRA_KUBECTL=$("$HERE/kubectl-compat.sh" "$DIR/kubectl-1.20") ||
    { FERRY_EXTRA_KUBECTL=""; echo "note: Debian's kubectl 1.20 not available: checked with $(command -v kubectl) only"; }
  [[ $FERRY_EXTRA_KUBECTL == "$(command -v kubectl)" ]] && FERRY_EXTRA_KUBECTL=""
fi
for kc in "$(command -v kubectl)" ${FERRY_EXTRA_KUBECTL:-}; do
  run_suite "$kc"
done
echo "$pass passed, $fail failed"
((fail == 0))
