// What the three executables share: exit-code policy, threads, device.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace aiayn {

// Runs an app's body and turns errors into exit codes: InputError (and any
// other bad-input error) -> one line on stderr and 2; anything else -> 1.
int run_app(const std::string& name, const std::function<int()>& body);

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
