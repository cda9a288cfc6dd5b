# The layering of cmake/layers.txt, checked on every build: a file may
# include only headers of its own folder and of the folders its line names.
# Run as
#   cmake -DROOT=<source dir> -P cmake/check_layering.cmake
# (the build does so before compiling); an include against the order fails
# with one line per offence naming the file, the line and what it may use.
cmake_minimum_required(VERSION 3.16)  # CMP0007: empty lines count, so line numbers hold
if(NOT ROOT)
  message(FATAL_ERROR "check_layering.cmake: set -DROOT=<source dir>")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/layers.cmake)
# A planted tree (the test's) may bring its own rule; the real one is ours.
set(rule "${ROOT}/cmake/layers.txt")
if(NOT EXISTS "${rule}")
  set(rule "${CMAKE_CURRENT_LIST_DIR}/layers.txt")
endif()
aiayn_read_layers("${rule}")

# Every C++ file under a folder of ours, at any depth, in a stable order.
set(sources "")
foreach(top IN LISTS AIAYN_TOPS)
  file(GLOB_RECURSE found "${ROOT}/${top}/*.h" "${ROOT}/${top}/*.hpp" "${ROOT}/${top}/*.cpp" "${ROOT}/${top}/*.cc")
  list(APPEND sources ${found})
endforeach()
list(SORT sources)

set(offences "")
foreach(source IN LISTS sources)
  file(RELATIVE_PATH where "${ROOT}" "${source}")
  aiayn_layer_of(layer "${where}")
  if(layer STREQUAL "")
    # src/new/x.cpp: a folder that cmake/layers.txt does not know yet.
    list(APPEND offences "${where}:1: is in no folder of cmake/layers.txt: add its folder there")
    continue()
  endif()
  set(may "${AIAYN_MAY_${layer}}")
  set(uses "no other folder of ours")
  if(may)
    string(REPLACE ";" ", " uses "only ${may}")
  endif()
  file(STRINGS "${source}" lines)
  set(number 0)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\"")
      continue()
    endif()
    set(header "${CMAKE_MATCH_1}")
    # "bridge_api.h", "catch2/catch.hpp": beside the file, or not ours.
    string(REGEX REPLACE "/.*" "" top "${header}")
    if(header STREQUAL top OR NOT top IN_LIST AIAYN_TOPS)
      continue()
    endif()
    aiayn_layer_of(theirs "${header}")
    if(theirs STREQUAL layer OR (NOT theirs STREQUAL "" AND theirs IN_LIST may))
      continue()
    endif()
    list(APPEND offences "${where}:${number}: includes ${header}, but ${layer} may use ${uses} (cmake/layers.txt)")
  endforeach()
endforeach()

if(offences)
  # One plain line each (FATAL_ERROR would wrap them), then the failure.
  foreach(offence IN LISTS offences)
    message("${offence}")
  endforeach()
  list(LENGTH offences count)
  message(FATAL_ERROR "layering: ${count} offence(s) against cmake/layers.txt")
endif()
