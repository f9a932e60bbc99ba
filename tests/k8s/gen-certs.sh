#!/usr/bin/env bash
# Per-run PKI for the test API server (openssl CLI):
#   tests/k8s/gen-certs.sh DIR IP [IP...]
# writes into DIR:
#   ca.crt ca.key            the run's CA
#   server.crt server.key    the API server (SANs: the IPs, 127.0.0.1, kubernetes,
#                            kubernetes.default, kubernetes.default.svc)
#   client.crt client.key    a client (CN=system:node:test, O=system:nodes)
#   other-ca.crt             a CA that signed nothing here (TLS-failure tests)
#   other-client.crt/.key    a client signed by other-ca (rejected by the server)
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
san="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1"
for ip in "$@"; do san+=",IP:$ip"; done
q() { "$@" >/dev/null 2>&1 || { echo "gen-certs.sh: failed: $*" >&2; "$@"; exit 1; }; }
key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() {  # name CN
  key "$1.key"
  q openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # name subj ca ext
  key "$1.key"
  q openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial \
    -days 2 -out "$1.crt" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
ca ca ferry-test-ca
ca other-ca ferry-other-ca
leaf server "/CN=kube-apiserver" ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
leaf client "/O=system:nodes/CN=system:node:test" ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
leaf other-client "/CN=intruder" other-ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ./*.srl other-ca.key
chmod 600 ./*.key
