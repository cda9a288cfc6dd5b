// Error kinds the apps map to exit codes (0 ok, 2 bad input, 1 anything else).
#pragma once
#include <stdexcept>

namespace aiayn {

// Bad input from the user: a file, a line or a key. The message names it and
// says what to fix; apps print it on one line and exit with code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace aiayn
