#!/usr/bin/env bash
# Install dependencies (if missing) and build ferry into <repo>/build.
# Extra arguments are passed to cmake's configure step.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/deps.sh"
cd "$ROOT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
make -C build -j"$(nproc)"
