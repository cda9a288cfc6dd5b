// Catch2's main, after the executables' own start: on a CPU that OpenBLAS
// does not know, the tests multiply with the kernel the CPU supports too.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

namespace aiayn {
void tune_environment(char** argv, bool training);  // src/common/app.h (kept light: no LibTorch here)
}

int main(int argc, char** argv) {
  aiayn::tune_environment(argv, false);
  return Catch::Session().run(argc, argv);
}
