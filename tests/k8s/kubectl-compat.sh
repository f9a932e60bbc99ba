#!/usr/bin/env bash
# Prints the path of Debian 12's kubectl (kubernetes-client, 1.20: the oldest
# kubectl the tests must work with, PLATFORM.md), unpacked into DIR without
# installing it (it would conflict with another kubectl on PATH). Exits 1,
# printing nothing, when the package cannot be had (no apt lists, offline).
#   tests/k8s/kubectl-compat.sh DIR
set -euo pipefail
dir=${1:?usage: kubectl-compat.sh DIR}
if [[ $(dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null || true) == "install ok installed" ]]; then
  echo /usr/bin/kubectl   # already the PATH kubectl
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
timeout 120 apt-get download -qq kubernetes-client >/dev/null 2>&1 || exit 1
dpkg-deb -x kubernetes-client_*.deb x >/dev/null 2>&1 || exit 1
rm -f kubernetes-client_*.deb
[[ -x x/usr/bin/kubectl ]] || exit 1
echo "$dir/x/usr/bin/kubectl"
