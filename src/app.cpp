#include "src/app.h"

#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "src/error.h"

namespace aiayn {

int run_app(const std::string& name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const InputError& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << name << ": internal error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

int set_threads(int threads) {
  if (threads < 0) throw InputError("--threads must be >= 0 (0 = all cores), got " +
                                    std::to_string(threads));
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  return threads;
}

torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw InputError("--device: unknown device \"" + name + "\" (use cpu, cuda or cuda:N)");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw InputError("--device " + name + ": CUDA is not available in this LibTorch build or machine");
  }
  return device;
}

}  // namespace aiayn
