#!/usr/bin/env bash
# Install dependencies (if missing) and build ferry into <repo>/build,
# printing one line per stage with the elapsed time, and CMake's progress.
#   scripts/build.sh [--target T]... [cmake configure args...]
# Without --target: everything (agent, CLI, tools, every test binary).
# BUILD_QUIET=1: a line per finished target (and every 30 s), not every compiler step.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets=()
while (($# > 0)) && [[ "$1" == --target ]]; do
  targets+=("${2:?--target needs a name}")
  shift 2
done
T0=$(date +%s)
stage() { echo "build.sh: [$(($(date +%s) - T0)) s] $*" >&2; }

stage "dependencies (scripts/deps.sh)"
"$ROOT/scripts/deps.sh"
cd "$ROOT"
stage "configure (cmake)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
stage "compile ${targets[*]:-everything} with $(nproc) jobs"
if [[ "${BUILD_QUIET:-0}" == 1 ]]; then
  # a line per finished target and at least one every 30 s, with CMake's
  # progress and the elapsed time; the whole output goes to a temp file,
  # shown (its end) only if the build fails
  LOG=$(mktemp)
  trap 'rm -f "$LOG"' EXIT
  set +e
  # (read line by line in bash: mawk, Debian's awk, reads a pipe in blocks)
  make -C build -j"$(nproc)" ${targets[@]+"${targets[@]}"} 2>&1 | tee "$LOG" | {
    last=0
    while IFS= read -r line; do
      [[ "$line" =~ ^\[\ *[0-9]+%\] ]] || continue
      printf -v now '%(%s)T' -1
      if [[ "$line" == *"Built target"* ]] || ((now - last >= 30)); then
        last=$now
        echo "build.sh: [$((now - T0)) s] $line" >&2
      fi
    done
  }
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc != 0)); then
    tail -40 "$LOG" >&2
    stage "build failed (make exit $rc)"
    exit "$rc"
  fi
else
  make -C build -j"$(nproc)" ${targets[@]+"${targets[@]}"}
fi
stage "done"
