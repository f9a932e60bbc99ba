#!/usr/bin/env bash
# Remove leftovers of ferry test runs; safe while other runs are in progress.
#
#   scripts/cleanup.sh           every run whose owner is gone
#   scripts/cleanup.sh P [P...]  exactly the runs with these prefixes (owner or not)
#
# A run is what `scripts/cluster.sh up` made for prefix P: netns P-*, cgroups
# ferry-P-*, /etc/netns/P-*, and /tmp/ferry-P with its bpffs mount. `up`
# records the run's owner (pid and start time of the test, demo or bench
# process) in /tmp/ferry-P/owner; without a prefix, only runs whose owner
# no longer exists are removed (a pid reused by a newer process does not
# count as the owner). A directory without that marker is never removed,
# and netns or cgroups whose run has no marker are only listed (remove
# them by naming the prefix). Removing a run: TERM (then KILL) to the
# processes in its netns and cgroups, its agents' `ferryd --cleanup`, then
# netns, mounts, cgroups, files (`cluster.sh down P`). Nothing else is
# touched: no root-namespace interface, route or sysctl.
set -euo pipefail
# shellcheck source=cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
[[ $(id -u) -eq 0 ]] || { echo "cleanup.sh: must run as root" >&2; exit 1; }
log() { echo "cleanup.sh: $*" >&2; }

if (($# > 0)); then
  for p in "$@"; do
    [[ "$p" =~ ^[a-z][a-z0-9]{1,14}$ ]] || { log "bad prefix '$p'"; exit 2; }
  done
  for p in "$@"; do
    if "$BASH" "$_FERRY_CLUSTER_SH" owner-alive "$p"; then
      log "removing run $p (its owner $(sed -n 's/^pid=//p' "/tmp/ferry-$p/owner") still runs: asked by name)"
    else
      log "removing run $p"
    fi
    cluster_down "$p"
  done
  exit 0
fi

set +e
removed=0 kept=0
declare -A marked=()
for d in /tmp/ferry-*; do
  [[ -d "$d" && -f "$d/owner" ]] || continue
  p=${d#/tmp/ferry-}
  [[ "$p" =~ ^[a-z][a-z0-9]{1,14}$ ]] || continue
  marked[$p]=1
  "$BASH" "$_FERRY_CLUSTER_SH" owner-alive "$p"
  case $? in
    0) kept=$((kept + 1)) ;;
    1) log "removing run $p (owner $(sed -n 's/^pid=//p' "$d/owner") is gone)"
       cluster_down "$p"; removed=$((removed + 1)) ;;
  esac
done

# What has no marked run dir: list it, leave it (it may belong to a run in
# another root, e.g. scripts/check-fresh.sh's, or to one made before markers).
declare -A unowned=()
while read -r ns _; do
  [[ "$ns" =~ ^([a-z][a-z0-9]{1,14})-(lan|ext|out|node[0-9]+|pod-.*)$ ]] || continue
  [[ -n "${marked[${BASH_REMATCH[1]}]:-}" ]] || unowned[${BASH_REMATCH[1]}]+=" netns:$ns"
done < <(ip netns list 2>/dev/null)
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [[ -n "$CG2" ]]; then
  for d in "$CG2"/ferry-*; do
    [[ -d "$d" ]] || continue
    if [[ "$(basename "$d")" =~ ^ferry-([a-z][a-z0-9]{1,14})-node[0-9]+$ ]]; then
      [[ -n "${marked[${BASH_REMATCH[1]}]:-}" ]] || unowned[${BASH_REMATCH[1]}]+=" cgroup:$d"
    fi
  done
fi
for p in "${!unowned[@]}"; do
  log "not touching prefix $p (no owner marker /tmp/ferry-$p/owner):${unowned[$p]}"
  log "  if it is a leftover, remove it with: scripts/cleanup.sh $p"
done
log "$removed run(s) removed, $kept in progress left alone"
exit 0
