// Configure probe (cmake/c10d.cmake): prints the version of the NCCL library
// it is linked with as "major.minor.patch", as nccl.h's macros spell it.
#include <nccl.h>

#include <cstdio>

int main() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return 1;
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch; older, *1000 + *100.
  const int major = code >= 10000 ? code / 10000 : code / 1000;
  const int minor = code >= 10000 ? code % 10000 / 100 : code % 1000 / 100;
  std::printf("%d.%d.%d\n", major, minor, code % 100);
  return 0;
}
