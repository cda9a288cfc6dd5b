#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds (Release, -j2):
#   bash scripts/build.sh               Debian's LibTorch 1.13.1 into build/
#   bash scripts/build.sh --torch pip   LibTorch 2.x from .venv-torch/ into build-pip/
# Other arguments go to CMake's configure step, e.g. -DCMAKE_PREFIX_PATH=/opt/libtorch
# for an unpacked LibTorch archive (docs/libtorch2.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch_flavour.sh
bash scripts/setup.sh --torch "$flavour"
configure=(-DCMAKE_BUILD_TYPE=Release)
if [ "$flavour" = pip ]; then
  prefix=$("$torch_python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
  configure+=("-DCMAKE_PREFIX_PATH=$prefix")
fi
if ! cmake -S . -B "$build_dir" "${configure[@]}" ${args[@]+"${args[@]}"} > "$build_dir.configure.log" 2>&1; then
  # A setup the build refuses (cmake/libtorch.cmake) says so in one line.
  if grep -q "^aiayn: error: " "$build_dir.configure.log"; then
    grep "^aiayn: error: " "$build_dir.configure.log" >&2
    exit 2
  fi
  cat "$build_dir.configure.log"
  exit 1
fi
grep -E "^-- (LibTorch|c10d|int8)" "$build_dir.configure.log" || true
cmake --build "$build_dir" -j "${JOBS:-2}"
