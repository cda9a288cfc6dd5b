# Data-parallel backends of c10d (src/train/distributed.cpp), included by
# cmake/libtorch.cmake. Each is on only where a probe showed it works with
# the headers found; otherwise training runs in one process (Gloo) or CUDA
# ranks reduce through the CPU (NCCL), and configure says so.
set(AIAYN_C10D_DEFINITIONS "")
set(AIAYN_C10D_INCLUDE_DIRS "")
set(AIAYN_NCCL_HEADER_VERSION "")

# Gloo. LibTorch's c10d backend is compiled into libtorch, but its header
# includes Gloo's, which no wheel or archive ships; Debian's libgloo-dev has
# a 2022 Gloo. Whether those headers fit this LibTorch's compiled Gloo is
# decided by a probe: two ranks on the real TCPStore and ProcessGroupGloo
# (the calls distributed.cpp makes) must compile, link and all-reduce to the
# right sum.
find_path(GLOO_INCLUDE_DIR gloo/config.h)
find_path(C10D_GLOO_HEADER torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
          PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH)
if(GLOO_INCLUDE_DIR AND C10D_GLOO_HEADER)
  # The result is cached with what it was probed with, and probed again
  # when any of that changes (another LibTorch, other headers, a new probe).
  file(MD5 ${CMAKE_CURRENT_LIST_DIR}/probes/gloo_allreduce.cpp probe_hash)
  set(probe_inputs "${TORCH_LIBRARY};${AIAYN_TORCH_VERSION};${GLOO_INCLUDE_DIR};${CMAKE_CXX_STANDARD};${probe_hash}")
  if(NOT "${probe_inputs}" STREQUAL "${AIAYN_GLOO_PROBE_INPUTS}")
    unset(AIAYN_GLOO_PROBE CACHE)
    unset(AIAYN_GLOO_PROBE_WHY CACHE)
  endif()
  if(NOT DEFINED AIAYN_GLOO_PROBE)
    message(STATUS "Probing c10d/Gloo with the Gloo headers at ${GLOO_INCLUDE_DIR}")
    try_run(gloo_run gloo_compiled ${CMAKE_BINARY_DIR}/probes/gloo
            ${CMAKE_CURRENT_LIST_DIR}/probes/gloo_allreduce.cpp
            CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${TORCH_INCLUDE_DIRS};${GLOO_INCLUDE_DIR}"
            COMPILE_DEFINITIONS -DUSE_C10D_GLOO ${TORCH_CXX_FLAGS}
            # Files, not LibTorch's imported targets: their link interfaces
            # name targets (protobuf::) that a probe project lacks.
            LINK_LIBRARIES ${AIAYN_TORCH_LIBDIR}/libtorch_cpu.so ${AIAYN_TORCH_LIBDIR}/libc10.so pthread
            LINK_OPTIONS -Wl,-rpath,${AIAYN_TORCH_LIBDIR}
            CXX_STANDARD ${CMAKE_CXX_STANDARD}
            COMPILE_OUTPUT_VARIABLE gloo_compile_output
            RUN_OUTPUT_VARIABLE gloo_run_output)
    if(NOT gloo_compiled)
      string(REGEX MATCH "[^\n]*([Ee]rror|No rule|cannot find)[^\n]*" first_error "${gloo_compile_output}")
      set(why "does not compile with them: ${first_error}")
    elseif(NOT gloo_run EQUAL 0)
      string(STRIP "${gloo_run_output}" gloo_run_output)
      set(why "compiles but its two-rank all-reduce failed (exit ${gloo_run}): ${gloo_run_output}")
    else()
      set(why "")
    endif()
    set(AIAYN_GLOO_PROBE_INPUTS "${probe_inputs}" CACHE INTERNAL "what the c10d/Gloo probe ran with")
    if(why STREQUAL "")
      set(AIAYN_GLOO_PROBE ON CACHE BOOL "c10d/Gloo probe passed (delete to probe again)")
    else()
      set(AIAYN_GLOO_PROBE OFF CACHE BOOL "c10d/Gloo probe failed (delete to probe again)")
      set(AIAYN_GLOO_PROBE_WHY "${why}" CACHE STRING "Why the c10d/Gloo probe failed")
    endif()
  endif()
  if(AIAYN_GLOO_PROBE)
    list(APPEND AIAYN_C10D_DEFINITIONS AIAYN_WITH_C10D USE_C10D_GLOO)
    list(APPEND AIAYN_C10D_INCLUDE_DIRS ${GLOO_INCLUDE_DIR})
    message(STATUS "c10d with Gloo: data-parallel training enabled (probe passed)")
  else()
    message(STATUS "c10d/Gloo: data-parallel training disabled for this LibTorch: the probe ${AIAYN_GLOO_PROBE_WHY}")
  endif()
else()
  message(STATUS "c10d/Gloo headers not found (install libgloo-dev): data-parallel training disabled")
endif()

# NCCL. ProcessGroupNCCL::Options changes its layout with NCCL_VERSION_CODE
# and its create() is inline, so an nccl.h of another NCCL than the one
# LibTorch loads corrupts memory instead of failing to compile. The header
# is taken, in this order, from -DNCCL_INCLUDE_DIR, from the package of the
# NCCL that LibTorch loads (pip's nvidia-nccl ships include/ beside lib/),
# or from the CUDA toolkit; then a probe asks the loaded library its version
# and anything but an exact match stops configure. The executables check the
# same at start (src/common/build_info.cpp). A LibTorch that links NCCL
# statically leaves nothing to compare with: the backend is then off unless
# -DNCCL_INCLUDE_DIR names a header, which is then the user's word.
option(AIAYN_NCCL "Build c10d's NCCL backend where LibTorch has it" ON)
find_path(C10D_NCCL_HEADER torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp
          PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH)
if(AIAYN_NCCL AND AIAYN_TORCH_CUDA AND AIAYN_GLOO_PROBE AND C10D_NCCL_HEADER)
  set(nccl_library "")
  find_library(torch_cuda_library torch_cuda PATHS "${AIAYN_TORCH_LIBDIR}" NO_DEFAULT_PATH NO_CACHE)
  if(torch_cuda_library)
    execute_process(COMMAND ldd "${torch_cuda_library}" OUTPUT_VARIABLE ldd_output ERROR_QUIET)
    string(REGEX MATCH "libnccl\\.so[.0-9]* => ([^ \n]+)" nccl_line "${ldd_output}")
    if(nccl_line)
      get_filename_component(nccl_library "${CMAKE_MATCH_1}" REALPATH)
    endif()
  endif()
  set(user_header OFF)
  if(NCCL_INCLUDE_DIR)
    set(user_header ON)
    set(nccl_include "${NCCL_INCLUDE_DIR}")
  else()
    set(nccl_include "")
    if(nccl_library)
      get_filename_component(package "${nccl_library}" DIRECTORY)
      get_filename_component(package "${package}" DIRECTORY)
      if(EXISTS "${package}/include/nccl.h")
        set(nccl_include "${package}/include")
      endif()
    endif()
    if(NOT nccl_include)
      find_path(toolkit_nccl nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} NO_CACHE)
      set(nccl_include "${toolkit_nccl}")
    endif()
  endif()
  if(NOT EXISTS "${nccl_include}/nccl.h")
    aiayn_configure_error("CUDA LibTorch ${AIAYN_TORCH_VERSION}: no nccl.h found for c10d's NCCL backend: pass -DNCCL_INCLUDE_DIR=<include of the NCCL that LibTorch loads> or -DAIAYN_NCCL=OFF")
  endif()
  file(STRINGS "${nccl_include}/nccl.h" nccl_defines REGEX "#define NCCL_(MAJOR|MINOR|PATCH) ")
  foreach(line ${nccl_defines})
    string(REGEX REPLACE ".* ([0-9]+).*" "\\1" part "${line}")
    string(APPEND AIAYN_NCCL_HEADER_VERSION "${part}.")
  endforeach()
  string(REGEX REPLACE "\\.$" "" AIAYN_NCCL_HEADER_VERSION "${AIAYN_NCCL_HEADER_VERSION}")
  if(nccl_library)
    try_run(nccl_run nccl_compiled ${CMAKE_BINARY_DIR}/probes/nccl
            ${CMAKE_CURRENT_LIST_DIR}/probes/nccl_version.cpp
            CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${nccl_include}"
            LINK_LIBRARIES "${nccl_library}"
            COMPILE_OUTPUT_VARIABLE nccl_compile_output
            RUN_OUTPUT_VARIABLE nccl_loaded_version)
    string(STRIP "${nccl_loaded_version}" nccl_loaded_version)
    if(NOT nccl_compiled OR NOT nccl_run EQUAL 0)
      aiayn_configure_error("NCCL at ${nccl_library} could not be asked its version with ${nccl_include}/nccl.h: pass -DNCCL_INCLUDE_DIR=<include of that NCCL> or -DAIAYN_NCCL=OFF")
    endif()
    if(NOT nccl_loaded_version STREQUAL AIAYN_NCCL_HEADER_VERSION)
      aiayn_configure_error("NCCL header mismatch: ${nccl_include}/nccl.h is NCCL ${AIAYN_NCCL_HEADER_VERSION} but LibTorch loads NCCL ${nccl_loaded_version} (${nccl_library}): pass -DNCCL_INCLUDE_DIR=<include of NCCL ${nccl_loaded_version}> (pip's nvidia-nccl package ships one) or -DAIAYN_NCCL=OFF")
    endif()
    set(source "the NCCL LibTorch loads")
  elseif(user_header)
    set(source "yours, unchecked: LibTorch links NCCL statically, so nothing can be compared")
  else()
    message(STATUS "c10d/NCCL: off: LibTorch links NCCL statically, so no nccl.h can be checked against it; pass -DNCCL_INCLUDE_DIR=<include of the NCCL it was built with> to build it anyway")
    set(AIAYN_NCCL_HEADER_VERSION "")
    return()
  endif()
  list(APPEND AIAYN_C10D_DEFINITIONS AIAYN_WITH_NCCL USE_C10D_NCCL)
  list(APPEND AIAYN_C10D_INCLUDE_DIRS ${nccl_include})
  message(STATUS "c10d with NCCL ${AIAYN_NCCL_HEADER_VERSION} (${nccl_include}/nccl.h; ${source}): CUDA ranks all-reduce on their GPUs")
endif()
