# Finds LibTorch, Debian's 1.13 or a 2.x (pip wheel or unpacked archive, CPU
# or CUDA), and settles what the build takes from it. Every trap of
# docs/libtorch2.md is decided here, once, by reading the LibTorch found or
# by a probe that compiles and runs against it; a setup that cannot work
# stops configure with one line that names the fix.
#
# Sets for CMakeLists.txt:
#   CMAKE_CXX_STANDARD         17, or what LibTorch's target asks for (20 for 2.13+)
#   AIAYN_TORCH_VERSION        "2.13.0"
#   AIAYN_TORCH_CUDA           ON for a CUDA LibTorch
#   AIAYN_C10D_DEFINITIONS     compile definitions of the data-parallel backends
#   AIAYN_C10D_INCLUDE_DIRS    their include directories (Gloo, NCCL)
#   AIAYN_NCCL_HEADER_VERSION  "2.29.7" of the nccl.h compiled against, or ""
#   AIAYN_INT8                 ON when LibTorch has the quantized ops int8 uses
include(CheckCXXSourceCompiles)

# A setup that cannot work: one line, unwrapped (FATAL_ERROR's text is
# wrapped at 80 columns), that scripts/build.sh shows alone, then the stop.
macro(aiayn_configure_error text)
  message(NOTICE "aiayn: error: ${text}")
  message(FATAL_ERROR "aiayn: configure stopped (the line beginning 'aiayn: error:' says why and what to do)")
endmacro()

# The Caffe2 config beside Torch's says whether this LibTorch was built with
# CUDA. Read it before find_package(Torch): that call needs the CUDA toolkit
# and, without one, fails in several paragraphs that do not say so.
function(aiayn_find_caffe2_config out)
  set(roots "")
  if(Torch_DIR)
    list(APPEND roots "${Torch_DIR}/..")
  endif()
  list(APPEND roots ${CMAKE_PREFIX_PATH} $ENV{CMAKE_PREFIX_PATH} /usr)
  string(REPLACE ":" ";" roots "${roots}")
  foreach(root ${roots})
    foreach(suffix . share/cmake lib/cmake lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake)
      if(EXISTS "${root}/${suffix}/Caffe2/Caffe2Config.cmake")
        get_filename_component(found "${root}/${suffix}/Caffe2/Caffe2Config.cmake" ABSOLUTE)
        set(${out} "${found}" PARENT_SCOPE)
        return()
      endif()
    endforeach()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

aiayn_find_caffe2_config(caffe2_config)
set(AIAYN_TORCH_CUDA OFF)
if(caffe2_config)
  file(STRINGS "${caffe2_config}" cuda_line REGEX "^[ \t]*set\\(CAFFE2_USE_CUDA 1\\)")
  if(cuda_line)
    set(AIAYN_TORCH_CUDA ON)
    find_package(CUDAToolkit QUIET)
    if(NOT CUDAToolkit_FOUND)
      aiayn_configure_error("LibTorch at ${caffe2_config} is a CUDA build and needs the CUDA toolkit at configure time, which was not found: install it (nvcc, cuBLAS) or pass -DCUDAToolkit_ROOT=/usr/local/cuda")
    endif()
  endif()
endif()

# A LibTorch outside the system (pip, an archive) beside Debian's: its
# TorchConfig looks for libtorch.so in the system's paths before its own,
# and would take Debian's. Its own prefix goes first.
if(caffe2_config AND NOT caffe2_config MATCHES "^/usr/lib/")
  get_filename_component(own_prefix "${caffe2_config}/../../../.." ABSOLUTE)
  list(PREPEND CMAKE_PREFIX_PATH "${own_prefix}")
endif()

find_package(Torch REQUIRED)
# Where libtorch.so is (torch/lib; Debian: /usr/lib/x86_64-linux-gnu), and
# the folder above it (holding include/ for a wheel or an archive).
get_filename_component(AIAYN_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)
get_filename_component(AIAYN_TORCH_PREFIX "${AIAYN_TORCH_LIBDIR}" DIRECTORY)

# The version, from the header the sources compile against (2.x keeps the
# numbers in torch/headeronly/version.h, which torch/version.h includes).
set(AIAYN_TORCH_VERSION "")
foreach(header torch/version.h torch/headeronly/version.h)
  find_file(version_h ${header} PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH NO_CACHE)
  if(version_h AND AIAYN_TORCH_VERSION STREQUAL "")
    file(STRINGS "${version_h}" version_lines REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
    foreach(line ${version_lines})
      string(REGEX REPLACE ".* ([0-9]+)$" "\\1" part "${line}")
      string(APPEND AIAYN_TORCH_VERSION "${part}.")
    endforeach()
  endif()
  unset(version_h)
endforeach()
string(REGEX REPLACE "\\.$" "" AIAYN_TORCH_VERSION "${AIAYN_TORCH_VERSION}")

# Results cached by the checks below belong to one LibTorch: another one,
# or another version in the same folder, checks again.
set(torch_identity "${TORCH_LIBRARY};${AIAYN_TORCH_VERSION}")
if(NOT "${torch_identity}" STREQUAL "${AIAYN_TORCH_IDENTITY}")
  unset(AIAYN_INT8 CACHE)
  unset(AIAYN_GLOO_PROBE CACHE)
  unset(AIAYN_GLOO_PROBE_WHY CACHE)
  set(AIAYN_TORCH_IDENTITY "${torch_identity}" CACHE INTERNAL "the LibTorch the cached checks ran with")
endif()

# libstdc++ ABI. LibTorch's config passes its ABI to every dependent target;
# with the old one (wheels before 2.7, "pre-cxx11" archives) Debian's
# spdlog/fmt and the SentencePiece bridge, all built with the new ABI, do not
# link, and the errors name std::string symbols, not the cause.
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  aiayn_configure_error("LibTorch ${AIAYN_TORCH_VERSION} (${TORCH_LIBRARY}) uses the old libstdc++ ABI (_GLIBCXX_USE_CXX11_ABI=0), which Debian's libraries cannot link with: use torch >= 2.7 from pip, or the cxx11-ABI LibTorch archive")
endif()

# ...and a config that still found another LibTorch's library says so.
get_filename_component(torch_config_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
get_filename_component(torch_library_real "${TORCH_LIBRARY}" REALPATH)
string(FIND "${torch_library_real}" "${torch_config_prefix}/" at)
if(caffe2_config AND NOT caffe2_config MATCHES "^/usr/lib/" AND NOT at EQUAL 0)
  aiayn_configure_error("LibTorch's config at ${TORCH_INSTALL_PREFIX} found libtorch at ${TORCH_LIBRARY}, another LibTorch: pass -DTORCH_LIBRARY=${TORCH_INSTALL_PREFIX}/lib/libtorch.so")
endif()

# fmt. Official LibTorch builds ship their own fmt (12.1 in 2.13) in
# include/fmt, and that include directory comes before the system's, so
# Debian's spdlog, built against Debian's fmt 9, would compile against 12
# (and fails to: fmt::basic_runtime is gone). LibTorch's public headers do
# not include fmt, so its include directory is replaced by a mirror of it
# without fmt/: spdlog and our code then see Debian's fmt only.
find_path(system_fmt fmt/format.h PATHS /usr/include NO_DEFAULT_PATH NO_CACHE)
if(EXISTS "${AIAYN_TORCH_PREFIX}/include/fmt" AND system_fmt)
  set(mirror "${CMAKE_BINARY_DIR}/libtorch-include")
  file(REMOVE_RECURSE "${mirror}")
  file(MAKE_DIRECTORY "${mirror}")
  file(GLOB entries RELATIVE "${AIAYN_TORCH_PREFIX}/include" "${AIAYN_TORCH_PREFIX}/include/*")
  foreach(entry ${entries})
    if(NOT entry STREQUAL "fmt")
      file(CREATE_LINK "${AIAYN_TORCH_PREFIX}/include/${entry}" "${mirror}/${entry}" SYMBOLIC)
    endif()
  endforeach()
  foreach(target torch torch_library torch_cpu torch_cpu_library c10 torch_cuda torch_cuda_library c10_cuda)
    if(TARGET ${target})
      get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
      if(dirs)
        string(REPLACE "${AIAYN_TORCH_PREFIX}/include" "${mirror}" dirs "${dirs}")
        set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${dirs}")
      endif()
    endif()
  endforeach()
  string(REPLACE "${AIAYN_TORCH_PREFIX}/include" "${mirror}" TORCH_INCLUDE_DIRS "${TORCH_INCLUDE_DIRS}")
  message(STATUS "LibTorch's own fmt hidden (${mirror}): Debian's spdlog needs Debian's fmt")
endif()

# The linker resolves libtorch_cuda's own dependencies (NCCL, cuBLAS...)
# through the system's library paths, where the CUDA toolkit's copies come
# first (here NCCL 2.28.9 for torch's 2.29.7: undefined ncclCommResume...).
# The loader takes the wheel's, through libtorch_cuda's RUNPATH; the linker
# is pointed at the same files, read off ldd.
set(AIAYN_TORCH_LINK_OPTIONS "")
find_library(torch_cuda_so torch_cuda PATHS "${AIAYN_TORCH_LIBDIR}" NO_DEFAULT_PATH NO_CACHE)
if(AIAYN_TORCH_CUDA AND torch_cuda_so)
  execute_process(COMMAND ldd "${torch_cuda_so}" OUTPUT_VARIABLE ldd_output ERROR_QUIET)
  string(REGEX MATCHALL "=> ([^ \n]+) \\(" resolved "${ldd_output}")
  set(link_dirs "")
  foreach(item ${resolved})
    string(REGEX REPLACE "=> ([^ ]+) \\(" "\\1" path "${item}")
    get_filename_component(dir "${path}" DIRECTORY)
    if(NOT dir MATCHES "^/(usr/)?lib")
      list(APPEND link_dirs "${dir}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES link_dirs)
  foreach(dir ${link_dirs})
    list(APPEND AIAYN_TORCH_LINK_OPTIONS "LINKER:-rpath-link,${dir}")
  endforeach()
endif()

# C++ standard: the one LibTorch's target asks for (2.13+ says 20; Debian's
# 1.13 says 14), never below our own 17.
get_target_property(torch_standard torch CXX_STANDARD)
set(CMAKE_CXX_STANDARD 17)
if(torch_standard AND torch_standard GREATER 17)
  set(CMAKE_CXX_STANDARD ${torch_standard})
endif()
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
message(STATUS "LibTorch ${AIAYN_TORCH_VERSION} (${TORCH_LIBRARY}): C++${CMAKE_CXX_STANDARD}, CUDA ${AIAYN_TORCH_CUDA}")

set(probe_flags "-std=c++${CMAKE_CXX_STANDARD}")
foreach(flag ${TORCH_CXX_FLAGS})
  string(APPEND probe_flags " ${flag}")
endforeach()

# int8 (models/int8_linear.cpp) calls the legacy quantized ops, which 2.x
# deprecates and may remove (pytorch/ao#2259). Without them the build goes
# on and --int8 is refused with exit 2.
set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
set(CMAKE_REQUIRED_FLAGS "${probe_flags}")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
check_cxx_source_compiles("
#include <ATen/ops/quantize_per_channel.h>
at::Tensor q(const at::Tensor& w, const at::Tensor& s, const at::Tensor& z) {
  return at::quantize_per_channel(w, s, z, 0, c10::kQInt8);
}" AIAYN_INT8)
unset(CMAKE_TRY_COMPILE_TARGET_TYPE)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT AIAYN_INT8)
  message(STATUS "int8: this LibTorch lacks quantize_per_channel; --int8 will be refused")
endif()

include(${CMAKE_CURRENT_LIST_DIR}/c10d.cmake)
