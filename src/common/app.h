// What the three executables share: exit-code policy, threads, device.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace aiayn {

// Runs an app's body and turns errors into exit codes: InputError (and any
// other bad-input error) -> one line on stderr and 2; IOError (a write that
// failed: full disk, permission) -> one line naming the path and the OS
// error, and 1; DivergenceError (training diverged) -> one line and 3;
// anything else -> 1.
int run_app(const std::string& name, const std::function<int()>& body);

// Settings that OpenBLAS and libgomp read from the environment before main,
// so that only a new image of the process can change them. Re-executes this
// program once (AIAYN_NO_REEXEC=1 turns this off; call first in main) with:
// - OPENBLAS_CORETYPE, when OpenBLAS fell back to a generic kernel on a CPU
//   whose features run a better one (src/common/blas_kernel.h); the new image checks
//   that kernel on a small product and goes back to OpenBLAS's own choice,
//   with a warning, if it errs. A user's OPENBLAS_CORETYPE is kept.
// - for training only, where LibTorch's BLAS is OpenBLAS on its own pthread
//   pool (Debian): OMP_WAIT_POLICY=PASSIVE (OpenMP workers sleep between
//   regions instead of spinning against OpenBLAS's threads) and
//   OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's idle threads sleep after ~16 cycles
//   of polling instead of ~2^28, which they spent in sched_yield), each
//   unless the user set it. Decoding runs many small products in a row, and
//   there sleeping threads cost more in wake-ups than spinning ones
//   (measured: one decoding worker on 2 threads, 309 sentences/s untuned,
//   223 PASSIVE).
void tune_environment(char** argv, bool training);
// Large freed blocks stay in the heap for the next batch instead of going
// back to the kernel: glibc maps every block over 32 MiB (the logits, their
// gradient) afresh, and the page faults of re-zeroing them cost ~12% of a
// training step here. Peak RSS grows to the step's high-water mark.
void keep_freed_memory();

// Threads for LibTorch and the BLAS under it; 0 means every core (LibTorch
// defaults to 1 here). With OpenBLAS's own pool, LibTorch's OpenMP pool gets
// one thread unless OMP_WAIT_POLICY=PASSIVE (see app.cpp). Returns the number.
int set_threads(int threads);
// The BLAS's own pool (OpenBLAS); a no-op for other BLAS libraries.
void set_blas_threads(int threads);
// "LibTorch intra-op 1, OpenBLAS 2 (OMP_WAIT_POLICY unset)", for the logs.
std::string describe_threads();

// What --version prints: the program and its version, LibTorch as built
// (describe_build: C++ standard and ABI, CUDA, cuDNN, NCCL, devices), the BLAS
// and its kernel (describe_blas), the CPU and its vector features, so that a
// user comparing figures across machines sees what each ran on.
std::string version_text(const std::string& app_name);
// "Intel(R) Xeon(R) ... (GenuineIntel family 6 model 106; AVX AVX2 ...), 2 cores"
std::string describe_cpu();

// "cpu", "cuda" or "cuda:N"; throws InputError when unavailable.
torch::Device parse_device(const std::string& name);

}  // namespace aiayn
