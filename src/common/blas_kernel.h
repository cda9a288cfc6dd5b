// Which OpenBLAS kernel the process multiplies with, and a better one when
// OpenBLAS fell back to a generic kernel on a CPU it does not know.
//
// Debian's OpenBLAS (a DYNAMIC_ARCH build) picks its kernels by CPU model
// number; a model newer than the library gets `Prescott`, SSE3 code that runs
// a 2048^2 sgemm 5x slower than the AVX-512 kernel the CPU could run. The
// choice here follows feature bits instead, so the next unknown CPU is served
// too; OPENBLAS_CORETYPE only takes effect when OpenBLAS loads, hence the
// re-exec in tune_environment (src/common/app.cpp).
#pragma once
#include <string>

namespace aiayn {

// cpuid feature bits that decide which OpenBLAS kernels can run, each counted
// only where the OS saves the registers it needs (XGETBV).
struct CpuFeatures {
  std::string vendor;      // "GenuineIntel", "AuthenticAMD", ...
  std::string model_name;  // cpuid brand string
  int family = 0, model = 0;
  bool avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512cd = false;
  bool avx512_vnni = false, avx512_bf16 = false;

  // All of AVX-512 F/BW/VL/DQ/CD: what OpenBLAS's SkylakeX kernels use.
  bool avx512_skylakex() const { return avx512f && avx512bw && avx512vl && avx512dq && avx512cd; }
  // "AVX2 FMA AVX-512 F/BW/VL/DQ/CD VNNI", the bits that matter here.
  std::string describe() const;
};

// This machine's (cpuid); all false off x86-64.
CpuFeatures detect_cpu_features();

// The best OpenBLAS 0.3.x kernel these features run: Cooperlake (AVX-512 with
// BF16), SkylakeX (AVX-512), Haswell (AVX2 + FMA), Sandybridge (AVX), or ""
// when nothing beyond SSE3 is there.
std::string best_openblas_kernel(const CpuFeatures& cpu);

// What to do about the kernel at start.
struct KernelDecision {
  std::string set;  // a kernel to re-execute with (OPENBLAS_CORETYPE), or "" to keep the current one
  std::string why;  // for the log line: "OpenBLAS chose Prescott: CPU model unknown to it; ..."
};

// A pure function of its inputs, so its table of cases is a unit test:
// - a user's OPENBLAS_CORETYPE is kept, whatever it is;
// - a generic kernel (one of a lower tier than the CPU's best) is replaced by
//   the best the features allow;
// - any other choice, including a name this table does not know, is kept.
KernelDecision choose_openblas_kernel(const CpuFeatures& cpu, const std::string& openblas_choice,
                                      const std::string& user_setting);

// The BLAS of this process as one line, e.g. "OpenBLAS 0.3.21, kernel
// Cooperlake (OpenBLAS chose Prescott: CPU model unknown to it; AVX-512 BF16
// present)". Read from the library itself and the environment that
// tune_environment left; for logs, --version and metrics.jsonl.
std::string describe_blas();
// The BLAS line where the BLAS is not OpenBLAS, read from at::show_config():
// "MKL 2024.2 (linked into LibTorch; no kernel to choose)" for official builds.
std::string non_openblas_description(const std::string& show_config);
// The kernel OpenBLAS runs ("SkylakeX"), or "" where the BLAS is not OpenBLAS.
std::string openblas_kernel();
// Whether OPENBLAS_CORETYPE is the kernel an aiayn re-exec set (recorded in
// AIAYN_OPENBLAS_SET), not a user's setting: a child process inherits both
// markers, and may have been given another OPENBLAS_CORETYPE since.
bool openblas_kernel_set_by_aiayn();
// OpenBLAS's build line ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."), or "".
std::string openblas_config();

// Multiplies a few odd-shaped float matrices through LibTorch (so through
// the BLAS) and compares them with float64 products summed here; returns the
// largest error relative to the sum of |a_ik * b_kj| over k (about 1e-7 for a
// correct kernel). Cheap: ~2M multiply-adds.
double blas_check_error();

}  // namespace aiayn
