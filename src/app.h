// What the three executables share: exit-code policy, threads, device.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace aiayn {

// Runs an app's body and turns errors into exit codes: InputError (and any
// other bad-input error) -> one line on stderr and 2; anything else -> 1.
int run_app(const std::string& name, const std::function<int()>& body);

// Settings that libgomp and OpenBLAS read from the environment before main,
// so that only a new image of the process can change them. Where LibTorch's
// BLAS is OpenBLAS on its own pthread pool (Debian), re-executes this program
// once with OMP_WAIT_POLICY=PASSIVE (OpenMP workers sleep between regions
// instead of spinning against OpenBLAS's threads) and
// OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's idle threads sleep after ~16 cycles
// of polling instead of ~2^28, which they spent in sched_yield), each unless
// the user set it. AIAYN_NO_REEXEC=1 turns this off. Call first in main.
// For training only: decoding runs many small products in a row, and there
// sleeping threads cost more in wake-ups than spinning ones (measured: one
// decoding worker on 2 threads, 309 sentences/s untuned, 223 PASSIVE).
void tune_environment(char** argv);
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

// "cpu", "cuda" or "cuda:N"; throws InputError when unavailable.
torch::Device parse_device(const std::string& name);

}  // namespace aiayn
