# The layering of docs/design.md, checked on every build: a file may include
# only headers of its own folder and of the folders below it. Run as
#   cmake -DROOT=<source dir> -P cmake/check_layering.cmake
# (the build does so before compiling); an include against the order fails
# with one line per offence naming the file, the line and what it may use.
cmake_minimum_required(VERSION 3.16)  # CMP0007: empty lines count, so line numbers hold
if(NOT ROOT)
  message(FATAL_ERROR "check_layering.cmake: set -DROOT=<source dir>")
endif()

# What each folder may include, besides itself.
set(may_models "")
set(may_src/common "models")
set(may_src/data "models;src/common;third_party")
set(may_src/decode "models;src/common;src/data")
set(may_src/train "models;src/common;src/data;src/decode")
set(may_src/attention "models;src/common;src/data;src/decode")
set(layers models src/common src/data src/decode src/train src/attention)
# Folders whose headers are ours, so that an include of them is checked;
# "src" itself holds no layer, so no layer may include a header left there.
set(known models src src/common src/data src/decode src/train src/attention tools apps third_party)

set(offences "")
foreach(layer ${layers})
  file(GLOB sources "${ROOT}/${layer}/*.h" "${ROOT}/${layer}/*.cpp")
  foreach(source ${sources})
    file(STRINGS "${source}" lines)
    set(number 0)
    foreach(line IN LISTS lines)
      math(EXPR number "${number} + 1")
      if(line MATCHES "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\"")
        set(header "${CMAKE_MATCH_1}")
        get_filename_component(folder "${header}" DIRECTORY)
        if(folder STREQUAL "third_party/sentencepiece")
          set(folder third_party)
        endif()
        list(FIND known "${folder}" ours)
        if(ours EQUAL -1 OR folder STREQUAL layer)
          continue()
        endif()
        list(FIND may_${layer} "${folder}" allowed)
        if(allowed EQUAL -1)
          file(RELATIVE_PATH where "${ROOT}" "${source}")
          set(uses "${may_${layer}}")
          if(uses STREQUAL "")
            set(uses "LibTorch")
          endif()
          string(REPLACE ";" ", " uses "${uses}")
          list(APPEND offences "${where}:${number}: includes ${header}, but ${layer} may use only ${uses} (docs/design.md)")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()

if(offences)
  # One plain line each (FATAL_ERROR would wrap them), then the failure.
  foreach(offence IN LISTS offences)
    message("${offence}")
  endforeach()
  list(LENGTH offences count)
  message(FATAL_ERROR "layering: ${count} include(s) against the order of docs/design.md")
endif()
