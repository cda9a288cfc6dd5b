#!/usr/bin/env bash
# Installs dependencies, builds and runs every test with ctest, for each
# LibTorch flavour (docs/libtorch2.md):
#   bash scripts/test.sh                 both: Debian's 1.13.1 (build/), then pip's 2.x (build-pip/)
#   bash scripts/test.sh --torch debian  one of them
#   bash scripts/test.sh --unit          the fast tier only (ctest label `unit`: the library
#                                        in-process, about half a minute after the build;
#                                        Debian's flavour unless --torch says otherwise)
# JOBS=N runs N tests at once (default 2, the cores here). What CI runs
# (.ci/run) is the full suite of both flavours.
set -euo pipefail
cd "$(dirname "$0")/.."
flavours=(debian pip)
explicit=""
label=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) flavours=("${2:?--torch takes debian or pip}"); explicit=1; shift ;;
    --torch=*) flavours=("${1#--torch=}"); explicit=1 ;;
    --unit) label=(-L unit) ;;
    *) echo "test.sh: usage: scripts/test.sh [--torch debian|pip] [--unit]" >&2; exit 2 ;;
  esac
  shift
done
[ ${#label[@]} -eq 0 ] || [ -n "$explicit" ] || flavours=(debian)
for flavour in "${flavours[@]}"; do
  case "$flavour" in debian|pip) ;; *) echo "test.sh: --torch takes debian or pip, not '$flavour'" >&2; exit 2 ;; esac
  if [ "$flavour" = pip ] && [ -z "$explicit" ] && ! command -v nvcc > /dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    # Asked for both: a machine without a CUDA toolkit cannot configure
    # against the index's CUDA torch; say so rather than fail.
    echo "== test.sh: SKIPPING the pip flavour: no CUDA toolkit (nvcc) on this machine, and the index's torch is a CUDA build (docs/libtorch2.md)"
    continue
  fi
  start=$SECONDS
  echo "== test.sh: LibTorch flavour $flavour${label[*]:+ (tier: unit)}; $(df -P -h . | awk 'NR == 2 { print $4 }') free here"
  bash scripts/build.sh --torch "$flavour"
  dir=build; [ "$flavour" = pip ] && dir=build-pip
  tests=$SECONDS
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j "${JOBS:-2}" "${label[@]}")
  echo "== test.sh: flavour $flavour built and passed in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s (tests $(( SECONDS - tests ))s)"
done
