#!/usr/bin/env bash
# Run the README's commands the way a new user meets them: on a minimal
# Debian 12 with nothing else installed.
#
#   scripts/check-fresh.sh [--demo] [--timeout MIN] [-- ARGS for scripts/test.sh]
#
# 1. `debootstrap --variant=minbase bookworm` into a temp dir (the downloaded
#    packages are cached as a tarball under $FERRY_FRESH_CACHE, default
#    /var/cache/ferry-check-fresh, so a rerun skips the download; apt's .debs
#    are cached there too), from the Debian mirror apt is configured with.
# 2. `git clone` of this checkout's HEAD into /root/ferry of the new root
#    (uncommitted changes are not part of the check: commit first).
# 3. In a private mount namespace: /proc, /sys, /dev, a bpffs and a cgroup2
#    mount in the new root, then, chrooted, as root with CI=true:
#    `scripts/test.sh` (or `scripts/demo.sh` with --demo), under a time
#    limit (default 60 minutes).
# 4. On exit (also after failure or timeout): processes still running in the
#    new root are killed (by pid), its mounts go away with the mount
#    namespace, and the temp dir is removed. Network namespaces and cgroups
#    the run made are removed by the test command's own clean-up.
#
# Too slow for .ci/run (a first build from nothing); run it before resolving
# an issue that touches dependencies. Prints the total time at the end.
set -euo pipefail
# (all in main: bash reads the whole file first, so editing it during a run is harmless)
main() {
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  MODE=test
  LIMIT_MIN=60
  while (($# > 0)); do
    case "$1" in
      --demo) MODE=demo ;;
      --timeout) LIMIT_MIN=${2:?--timeout needs minutes}; shift ;;
      --) shift; break ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "check-fresh.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
  done
  EXTRA=("$@")

  log() { echo "check-fresh: $(date -u +%H:%M:%S) $*" >&2; }
  die() { log "error: $*"; exit 1; }
  [[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot, network namespaces)"
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
      || die "could not install debootstrap"
  fi
  [[ "$LIMIT_MIN" =~ ^[0-9]+$ ]] || die "--timeout wants whole minutes"

  # The Debian mirror apt uses here: the first bookworm URI of a deb822
  # .sources file, else of a one-line sources.list entry.
  mirror() {
    local f m
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$f" ]] || continue
      m=$(awk 'BEGIN { RS = ""; FS = "\n" }
               /(^|\n)Suites:[^\n]*bookworm([ \n]|$)/ && /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
                 for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, " ");
                   if (u[1] !~ /security/) { print u[1]; exit } } }' "$f")
      [[ -n "$m" ]] && { echo "$m"; return; }
    done
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" && $0 ~ / bookworm / && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
    echo "${m:-http://deb.debian.org/debian}"
  }
  MIRROR=$(mirror)
  ARCH=$(dpkg --print-architecture)
  CACHE=${FERRY_FRESH_CACHE:-/var/cache/ferry-check-fresh}
  TARBALL="$CACHE/bookworm-minbase-$ARCH.tgz"
  mkdir -p "$CACHE/apt-archives/partial"

  START=$(date +%s)
  T=$(mktemp -d /var/tmp/ferry-fresh.XXXXXX)
  R="$T/root"
  INNER_PID=""
  # Everything the run made lives under $T; its mounts live in the private
  # mount namespace of the inner process, so they vanish with it.
  finish() {
    local rc=$? pid pids i
    trap - EXIT
    set +e
    [[ -n "$INNER_PID" ]] && kill -TERM "$INNER_PID" 2>/dev/null
    for i in 1 2; do   # processes left in the new root (daemons of the demo, a timed-out test)
      pids=""
      for pid in /proc/[0-9]*; do
        [[ "$(readlink "$pid/root" 2>/dev/null)" == "$R" ]] && pids+=" ${pid#/proc/}"
      done
      [[ -z "$pids" ]] && break
      log "stopping processes left in the fresh root:$pids"
      # shellcheck disable=SC2086
      kill -$([[ $i == 1 ]] && echo TERM || echo KILL) $pids 2>/dev/null
      sleep 2
    done
    if awk -v d="$T" '$2 == d || index($2, d "/") == 1' /proc/mounts | grep -q .; then
      log "warning: mounts left under $T, keeping it"
    else
      rm -rf "$T"
    fi
    log "total $(($(date +%s) - START)) s, exit status $rc"
    exit "$rc"
  }
  trap finish EXIT
  trap 'exit 130' INT TERM HUP

  if [[ ! -s "$TARBALL" ]]; then
    log "downloading a minbase bookworm from $MIRROR into $TARBALL (once)"
    debootstrap --variant=minbase --arch="$ARCH" --make-tarball="$TARBALL.tmp" bookworm "$T/mk" "$MIRROR" \
      >"$T/debootstrap-download.log" 2>&1 || { tail -20 "$T/debootstrap-download.log" >&2; die "debootstrap --make-tarball failed"; }
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$T/mk"
  fi
  log "bootstrapping a minbase bookworm into $R"
  debootstrap --variant=minbase --arch="$ARCH" --unpack-tarball="$TARBALL" bookworm "$R" "$MIRROR" \
    >"$T/debootstrap.log" 2>&1 || { tail -20 "$T/debootstrap.log" >&2; die "debootstrap failed"; }
  # apt's sources: the same mirror, with the release's updates and security
  # suites as an installed Debian 12 has them
  SEC=$(awk '/^URIs:.*security/ { print $2; exit } /^deb .*security/ { print $2; exit }' \
          /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
  {
    echo "deb $MIRROR bookworm main"
    echo "deb $MIRROR bookworm-updates main"
    [[ -n "$SEC" ]] && echo "deb $SEC bookworm-security main"
  } >"$R/etc/apt/sources.list"
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  echo "ferry-fresh" >"$R/etc/hostname"

  log "cloning $(git -C "$ROOT" rev-parse --short HEAD) into /root/ferry"
  [[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]] \
    || log "warning: uncommitted changes in $ROOT are not part of the check"
  git clone -q --no-hardlinks "$ROOT" "$R/root/ferry"

  case $MODE in
    test) CMD="scripts/test.sh ${EXTRA[*]:-}" ;;
    demo) CMD="scripts/demo.sh" ;;
  esac
  log "running '$CMD' in the fresh root (time limit $LIMIT_MIN min)"
  # Inside a private mount namespace: the new root is a mount point of its
  # own (`ip netns exec` remounts / as a slave, which needs one), and gets
  # the kernel file systems the tests need. /run/netns is made by `ip netns`
  # itself inside the new root.
  timeout --kill-after=30 "$((LIMIT_MIN * 60))" \
    unshare --mount --propagation private -- bash -euo pipefail -c '
      R=$1 CACHE=$2 CMD=$3
      mount --bind "$R" "$R"
      mount -t proc proc "$R/proc"
      mount -t sysfs sysfs "$R/sys"
      mount -t bpf bpf "$R/sys/fs/bpf"
      mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
      mount --rbind /dev "$R/dev"
      mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
      mount -t tmpfs -o mode=755 tmpfs "$R/run"
      mount --bind "$CACHE/apt-archives" "$R/var/cache/apt/archives"
      exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C.UTF-8 TERM=dumb CI=true \
        bash -c "cd /root/ferry && $CMD"
    ' inner "$R" "$CACHE" "$CMD" &
  INNER_PID=$!
  set +e
  wait "$INNER_PID"
  rc=$?
  set -e
  INNER_PID=""
  ((rc == 124)) && log "time limit of $LIMIT_MIN min reached"
  log "'$CMD' in a fresh Debian 12 exited with $rc after $(($(date +%s) - START)) s"
  exit "$rc"
}
main "$@"
