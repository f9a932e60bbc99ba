#!/usr/bin/env bash
# Remove the leftovers of ALL ferry test runs (safe to run at any time; idempotent):
#   - processes inside every netns named fy<5 hex>-* (TERM, then KILL), then the netns
#   - mounts below /tmp/ferry-* (the per-run bpffs)
#   - cgroup2 directories ferry-* (their processes are killed first)
#   - the /tmp/ferry-* run directories
# Runs with a custom FERRY_PREFIX are covered by their run dir / cgroup names;
# their netns are removed when a /tmp/ferry-<P> dir or ferry-<P>-* cgroup names them.
# Touches nothing else: no root-namespace interfaces, routes or sysctls.
set -euo pipefail
# shellcheck source=cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
[[ $(id -u) -eq 0 ]] || { echo "cleanup.sh: must run as root" >&2; exit 1; }
set +e

prefixes=()
# from netns names
while read -r ns _; do
  if [[ "$ns" =~ ^(fy[0-9a-f]{5})- ]]; then prefixes+=("${BASH_REMATCH[1]}"); fi
done < <(ip netns list 2>/dev/null)
# from run dirs
for d in /tmp/ferry-*; do
  [[ -d "$d" ]] || continue
  p=${d#/tmp/ferry-}
  [[ "$p" =~ ^[a-z][a-z0-9]{1,14}$ ]] && prefixes+=("$p")
done
# from cgroups
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [[ -n "$CG2" ]]; then
  for d in "$CG2"/ferry-*; do
    [[ -d "$d" ]] || continue
    b=$(basename "$d")
    if [[ "$b" =~ ^ferry-([a-z][a-z0-9]{1,14})-node[0-9]+$ ]]; then prefixes+=("${BASH_REMATCH[1]}"); fi
  done
fi

mapfile -t prefixes < <(printf '%s\n' "${prefixes[@]}" | sort -u | grep .)
for p in "${prefixes[@]}"; do
  echo "cleanup.sh: removing run $p" >&2
  cluster_down "$p"
done

# sweep anything the per-run teardown could not attribute
while read -r ns _; do
  [[ "$ns" =~ ^fy[0-9a-f]{5}- ]] || continue
  _cl_kill_netns_pids "$ns"
  ip netns del "$ns" 2>/dev/null || echo "cleanup.sh: warning: could not delete netns $ns" >&2
done < <(ip netns list 2>/dev/null)
for d in /tmp/ferry-*; do
  [[ -e "$d" ]] || continue
  _cl_umount_below "$d"
done
if [[ -n "$CG2" ]]; then
  for d in "$CG2"/ferry-*; do
    [[ -d "$d" ]] && _cl_rm_cgroup "$d"
  done
fi
for d in /tmp/ferry-*; do
  [[ -e "$d" ]] || continue
  if [[ -z "$(awk -v d="$d" '$2 == d || index($2, d "/") == 1' /proc/mounts)" ]]; then
    rm -rf "$d"
  else
    echo "cleanup.sh: warning: keeping $d (still has mounts)" >&2
  fi
done
exit 0
