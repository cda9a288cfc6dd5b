// What the three executables share: exit-code policy, threads, device.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace aiayn {

// Runs an app's body and turns errors into exit codes: InputError (and any
// other bad-input error) -> one line on stderr and 2; anything else -> 1.
int run_app(const std::string& name, const std::function<int()>& body);

// Intra-op threads for LibTorch; 0 means every core (LibTorch defaults to 1 here).
int set_threads(int threads);

// "cpu", "cuda" or "cuda:N"; throws InputError when unavailable.
torch::Device parse_device(const std::string& name);

}  // namespace aiayn
