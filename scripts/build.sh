#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds into build/ (Release, -j2).
# Extra arguments go to CMake's configure step, e.g. -DCMAKE_PREFIX_PATH=/opt/libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" > build.configure.log 2>&1 \
  || { cat build.configure.log; exit 1; }
cmake --build build -j "${JOBS:-2}"
