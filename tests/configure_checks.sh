#!/usr/bin/env bash
# Bad setups of a CUDA LibTorch must stop configure with one line that names
# the fix (cmake/libtorch.cmake, cmake/c10d.cmake). Each case configures the
# real source tree against the real LibTorch of this build, with one thing
# made wrong:
#   no-cuda-toolkit  the CUDA toolkit hidden (PATH and CMake's search)
#   nccl-mismatch    -DNCCL_INCLUDE_DIR at the toolkit's nccl.h, when that
#                    is another NCCL than the one LibTorch loads
#   old-abi          the LibTorch's own CMake config, copied, saying
#                    _GLIBCXX_USE_CXX11_ABI=0 as wheels before 2.7 do
# Usage: configure_checks.sh CASE SOURCE_DIR TORCH_DIR LOADED_NCCL_VERSION
set -euo pipefail
case_name=$1 source_dir=$2 torch_dir=$3 loaded_nccl=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Configures; passes when it fails with exactly one "aiayn: error:" line
# that contains every expected text, fails otherwise.
expect_refusal() {
  local log=$work/log
  shift_args=("$@")
  if "${configure[@]}" > "$log" 2>&1; then
    echo "configure succeeded; expected it to refuse ($case_name)"; tail -20 "$log"; exit 1
  fi
  local lines
  lines=$(grep -c "^aiayn: error: " "$log" || true)
  if [ "$lines" != 1 ]; then
    echo "expected one 'aiayn: error:' line, got $lines"; tail -30 "$log"; exit 1
  fi
  local line
  line=$(grep "^aiayn: error: " "$log")
  echo "$line"
  for want in "${shift_args[@]}"; do
    case "$line" in *"$want"*) ;; *) echo "the line lacks: $want"; exit 1 ;; esac
  done
}

prefix=$(cd "$torch_dir/../../.." && pwd)  # TorchConfig.cmake's own TORCH_INSTALL_PREFIX
base=(cmake -S "$source_dir" -B "$work/build" -DBUILD_TESTING=OFF)
case "$case_name" in
  no-cuda-toolkit)
    if [ -x /usr/bin/nvcc ]; then
      echo "nvcc is in /usr/bin, beside cmake and g++: it cannot be hidden here, nothing to test"; exit 0
    fi
    nvcc_dirs=""
    for d in $(echo "$PATH" | tr ':' ' ') /usr/local/cuda/bin /usr/local/cuda-*/bin; do
      [ -x "$d/nvcc" ] && nvcc_dirs="$nvcc_dirs;$d"
    done
    clean_path=$(echo "$PATH" | tr ':' '\n' | while read -r d; do [ -x "$d/nvcc" ] || echo "$d"; done | paste -sd:)
    configure=(env -u CUDAToolkit_ROOT -u CUDA_PATH PATH="$clean_path" "${base[@]}"
               "-DCMAKE_PREFIX_PATH=$prefix/share/cmake" "-DCMAKE_IGNORE_PATH=${nvcc_dirs#;}")
    expect_refusal "is a CUDA build and needs the CUDA toolkit" "-DCUDAToolkit_ROOT="
    ;;
  nccl-mismatch)
    [ -n "$loaded_nccl" ] || { echo "this build has no NCCL backend: no mismatch to test"; exit 0; }
    header=""
    for d in /usr/local/cuda/include /usr/include /usr/local/include; do
      [ -f "$d/nccl.h" ] && { header=$d; break; }
    done
    [ -n "$header" ] || { echo "no toolkit nccl.h here to mismatch with: nothing to test"; exit 0; }
    version=$(sed -n 's/^#define NCCL_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$header/nccl.h" | paste -sd.)
    if [ "$version" = "$loaded_nccl" ]; then
      echo "$header/nccl.h is NCCL $version, the loaded one: no mismatch to test"; exit 0
    fi
    configure=("${base[@]}" "-DCMAKE_PREFIX_PATH=$prefix/share/cmake" "-DNCCL_INCLUDE_DIR=$header")
    expect_refusal "NCCL header mismatch: $header/nccl.h is NCCL $version but LibTorch loads NCCL $loaded_nccl" \
                   "-DNCCL_INCLUDE_DIR=<include of NCCL $loaded_nccl>"
    ;;
  old-abi)
    fake=$work/libtorch
    mkdir -p "$fake/share"
    cp -r "$prefix/share/cmake" "$fake/share/cmake"
    ln -s "$prefix/include" "$fake/include"
    ln -s "$prefix/lib" "$fake/lib"
    config=$fake/share/cmake/Torch/TorchConfig.cmake
    echo 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")' >> "$config"
    configure=("${base[@]}" "-DCMAKE_PREFIX_PATH=$fake/share/cmake")
    expect_refusal "uses the old libstdc++ ABI (_GLIBCXX_USE_CXX11_ABI=0)" "use torch >= 2.7 from pip"
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
