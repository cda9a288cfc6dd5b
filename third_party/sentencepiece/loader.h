// Finds and loads the SentencePiece bridge (README.md in this folder).
#pragma once
#include <string>

#include "bridge_api.h"

namespace aiayn::spm {

// The bridge's function table, loaded once per process (thread-safe).
// Throws std::runtime_error naming every path it tried when none loads.
const aiayn_spm_api& api();

// Where the bridge was loaded from (after api() succeeded).
std::string bridge_path();

}  // namespace aiayn::spm
