# Sourced by setup.sh, build.sh and test.sh: the LibTorch flavour to use.
#   --torch debian   Debian's libtorch-dev 1.13.1 (CPU, OpenBLAS) into build/
#   --torch pip      the newest torch from the package index that fits this
#                    machine's CUDA toolkit, in .venv-torch/, into build-pip/
# Sets: flavour, build_dir, venv, and leaves the other arguments in args[].
flavour=debian
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) [ $# -ge 2 ] || { echo "$(basename "$0"): --torch needs debian or pip" >&2; exit 2; }
             flavour=$2; shift 2 ;;
    --torch=*) flavour=${1#--torch=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$flavour" in
  debian) build_dir=build ;;
  pip) build_dir=build-pip ;;
  *) echo "$(basename "$0"): --torch must be debian or pip, got \"$flavour\"" >&2; exit 2 ;;
esac
venv=${AIAYN_TORCH_VENV:-.venv-torch}
# AIAYN_TORCH_PYTHON: build against the torch of this interpreter instead of
# .venv-torch's (a GPU machine's own PyTorch, scripts/gpu_check.sh);
# AIAYN_BUILD_DIR: another build directory for it.
torch_python=${AIAYN_TORCH_PYTHON:-$venv/bin/python}
build_dir=${AIAYN_BUILD_DIR:-$build_dir}
