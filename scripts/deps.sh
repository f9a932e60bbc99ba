#!/usr/bin/env bash
# Install ferry's build and test dependencies on Debian 12 (idempotent).
# Fast path: if every package is already installed (dpkg-query), do nothing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libboost-program-options-dev libgtest-dev libgmock-dev libyaml-cpp-dev nlohmann-json3-dev
  libmnl-dev libldns-dev libspdlog-dev libclang-rt-14-dev libmicrohttpd-dev
  iproute2 iputils-ping iperf3 ethtool jq dnsutils dnsmasq-base python3 procps util-linux curl
  iptables nftables gnuplot-nox
  libcurl4-openssl-dev openssl
)
# kubectl for the Kubernetes-source tests: the one on PATH if any (Debian's
# kubernetes-client would conflict with another install), else Debian's.
if ! command -v kubectl >/dev/null 2>&1; then
  PKGS+=(kubernetes-client)
fi

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$st" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps.sh: installing: ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
