#!/usr/bin/env bash
# Installs dependencies, builds and runs every test with ctest, for each
# LibTorch flavour (docs/libtorch2.md):
#   bash scripts/test.sh                 both: Debian's 1.13.1 (build/), then pip's 2.x (build-pip/)
#   bash scripts/test.sh --torch debian  one of them
# JOBS=N runs N tests at once (default 2, the cores here).
set -euo pipefail
cd "$(dirname "$0")/.."
flavours=(debian pip)
case "${1:-}" in
  --torch) flavours=("${2:?--torch takes debian or pip}") ;;
  --torch=*) flavours=("${1#--torch=}") ;;
  "") ;;
  *) echo "test.sh: usage: scripts/test.sh [--torch debian|pip]" >&2; exit 2 ;;
esac
for flavour in "${flavours[@]}"; do
  if [ "$flavour" = pip ] && [ -z "${1:-}" ] && ! command -v nvcc > /dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    # Asked for both: a machine without a CUDA toolkit cannot configure
    # against the index's CUDA torch; say so rather than fail.
    echo "== test.sh: SKIPPING the pip flavour: no CUDA toolkit (nvcc) on this machine, and the index's torch is a CUDA build (docs/libtorch2.md)"
    continue
  fi
  start=$SECONDS
  echo "== test.sh: LibTorch flavour $flavour"
  bash scripts/build.sh --torch "$flavour"
  dir=build; [ "$flavour" = pip ] && dir=build-pip
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j "${JOBS:-2}")
  echo "== test.sh: flavour $flavour built and passed in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
done
