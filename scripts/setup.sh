#!/usr/bin/env bash
# Installs the project's dependencies. Idempotent: quick when all are present.
#   bash scripts/setup.sh               Debian's packages (LibTorch 1.13.1, CPU), and
#                                       .venv-tools/ (ctranslate2, sacrebleu: docs/ctranslate2.md)
#   bash scripts/setup.sh --torch pip   the same, and LibTorch 2.x from the
#                                       package index in .venv-torch/ (docs/libtorch2.md)
# AIAYN_TORCH_VERSION=2.15.0 picks another torch for --torch pip.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch_flavour.sh

# Both flavours take everything but LibTorch from Debian.
packages=(
  build-essential cmake pkg-config
  libtorch-dev libopenblas0-pthread
  libsentencepiece-dev sentencepiece
  libcli11-dev libspdlog-dev nlohmann-json3-dev catch2 time
  libgloo-dev libcpp-httplib-dev
  python3 python3-torch python3-sentencepiece python3-nltk python3-matplotlib python3-venv
  python3-numpy python3-yaml
  chromium chromium-driver python3-selenium
  clang-format-14
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} Debian packages present"
elif [ -n "${AIAYN_OFFLINE:-}" ]; then
  # No network (a lent GPU machine): say what is missing, install nothing.
  echo "setup: AIAYN_OFFLINE: not installing the missing Debian packages ${missing[*]}" >&2
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# The Python tools beside the toolkit (tools/export_ctranslate2.py, the
# CTranslate2 and sacreBLEU sides of bench/ and their tests): a venv over
# Debian's python3, which keeps its torch and sentencepiece, with pinned
# ctranslate2, sacrebleu and sacremoses (tools/moses_text.py: the Multi30k
# recipe's literature setting) from the package index.
tools_venv=.venv-tools
tools_pins=(ctranslate2==4.8.5 sacrebleu==2.6.0 sacremoses==0.2.0)
if "$tools_venv/bin/python" -c 'import ctranslate2, sacrebleu, sacremoses, sys
sys.exit(ctranslate2.__version__ != "4.8.5" or sacrebleu.__version__ != "2.6.0"
         or sacremoses.__version__ != "0.2.0")' 2>/dev/null; then
  echo "setup: ${tools_pins[*]} present in $tools_venv"
elif [ -n "${AIAYN_OFFLINE:-}" ]; then
  echo "setup: AIAYN_OFFLINE: not installing ${tools_pins[*]} into $tools_venv" >&2
else
  echo "setup: installing ${tools_pins[*]} into $tools_venv"
  /usr/bin/python3 -m venv --system-site-packages "$tools_venv"
  "$tools_venv/bin/python" -m pip install -q --disable-pip-version-check "${tools_pins[@]}"
fi
[ "$flavour" = pip ] || exit 0
if [ -n "${AIAYN_TORCH_PYTHON:-}" ]; then
  "$AIAYN_TORCH_PYTHON" -c 'import torch' 2>/dev/null \
    || { echo "setup: AIAYN_TORCH_PYTHON=$AIAYN_TORCH_PYTHON cannot import torch" >&2; exit 2; }
  echo "setup: torch $("$AIAYN_TORCH_PYTHON" -c 'import torch; print(torch.__version__)') from $AIAYN_TORCH_PYTHON"
  exit 0
fi

# The index's torch wheels are CUDA builds: each needs a CUDA toolkit of
# its CUDA at configure time (cmake/libtorch.cmake). What is known of them:
# 2.13 is built with CUDA 13.0; 2.14 and later with 13.2.
python=${PYTHON:-python3}
if [ -z "${AIAYN_TORCH_VERSION:-}" ]; then
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  [ -x "$nvcc" ] || { echo "setup: no CUDA toolkit (nvcc) found; the index's torch is a CUDA build and needs one: install it, or set AIAYN_TORCH_VERSION and CUDAToolkit_ROOT" >&2; exit 2; }
  cuda=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
  case "$cuda" in
    13.0|13.1) AIAYN_TORCH_VERSION=2.13.0 ;;
    13.*) AIAYN_TORCH_VERSION=2.15.0 ;;
    *) echo "setup: CUDA toolkit $cuda: no torch on the index is known to fit it; set AIAYN_TORCH_VERSION (docs/libtorch2.md)" >&2; exit 2 ;;
  esac
fi
# sentencepiece, nltk and numpy beside it: the benchmarks' PyTorch references run on this torch too.
if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" = "$AIAYN_TORCH_VERSION" ]; then
  echo "setup: torch $AIAYN_TORCH_VERSION present in $venv"
  "$venv/bin/python" -c 'import sentencepiece, nltk, numpy' 2>/dev/null || [ -n "${AIAYN_OFFLINE:-}" ] \
    || "$venv/bin/python" -m pip install -q --disable-pip-version-check sentencepiece nltk numpy
  exit 0
fi
echo "setup: installing torch $AIAYN_TORCH_VERSION into $venv (about 2.6 GB with its CUDA libraries)"
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian's own python3 keeps venv's pip bootstrap in a package of its own.
  echo "setup: $python lacks venv/ensurepip: installing python3-venv"
  [ "$(id -u)" -eq 0 ] && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
    || sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
# pip holds every wheel (~2.6 GB) in $TMPDIR while it unpacks them (~4.8 GB)
# into the venv; its cache would hold a third copy, so it is off. Short of
# room, pip stops half-way with a bare errno 28: say how much is missing first.
need_gb=8
free_gb() { df -P -B1G "$1" | awk 'NR == 2 { print $4 }'; }
have_venv=$(free_gb .); have_tmp=$(free_gb "${TMPDIR:-/tmp}")
if [ "$(df -P . | awk 'NR == 2 { print $1 }')" = "$(df -P "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $1 }')" ]; then
  short=$(( have_venv < need_gb ))
else
  short=$(( have_venv < 5 || have_tmp < 3 ))
fi
if [ "$short" -eq 1 ]; then
  echo "setup: torch $AIAYN_TORCH_VERSION needs about ${need_gb} GB free (2.6 GB of wheels in ${TMPDIR:-/tmp}, 4.8 GB in $venv); $(pwd) has ${have_venv} GB and ${TMPDIR:-/tmp} ${have_tmp} GB: free some, or point TMPDIR elsewhere" >&2
  exit 2
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir "torch==$AIAYN_TORCH_VERSION" sentencepiece nltk numpy
echo "setup: torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null) in $venv"
