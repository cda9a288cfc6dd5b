#include "src/common/precision.h"

#include <ATen/autocast_mode.h>

#include <fstream>
#include <sstream>

#include "src/common/error.h"

namespace aiayn {

namespace {

torch::ScalarType dtype_of(Precision p) { return p == Precision::fp16 ? torch::kFloat16 : torch::kBFloat16; }

// LibTorch 2.4 and later name the device in one call; 1.13 to 2.3 have a
// call per device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define AIAYN_AUTOCAST_BY_DEVICE 1
#else
#define AIAYN_AUTOCAST_BY_DEVICE 0
#endif

bool autocast_enabled(torch::DeviceType type) {
#if AIAYN_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

torch::ScalarType autocast_dtype(torch::DeviceType type) {
#if AIAYN_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                              : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast(torch::DeviceType type, bool enabled, torch::ScalarType dtype) {
#if AIAYN_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

}  // namespace

const char* to_string(Precision p) {
  switch (p) {
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
    default:
      return "fp32";
  }
}

Precision parse_precision(const std::string& text, const std::string& origin) {
  for (auto p : {Precision::fp32, Precision::bf16, Precision::fp16}) {
    if (text == to_string(p)) return p;
  }
  throw InputError(origin + ": unknown precision \"" + text + "\" (use fp32, bf16 or fp16)");
}

std::string precision_unavailable_reason(Precision precision, const torch::Device& device) {
  if (precision == Precision::fp32) return "";
  if (!device.is_cpu() && !device.is_cuda()) {
    return std::string(to_string(precision)) + " runs on cpu or cuda, not " + device.str();
  }
#if TORCH_VERSION_MAJOR < 2
  if (precision == Precision::fp16 && device.is_cpu()) {
    return "fp16 on the CPU needs LibTorch 2.x's autocast (this build has " TORCH_VERSION
           "); use bf16 on the CPU, or the pip build (scripts/setup.sh --torch pip)";
  }
#endif
  return "";
}

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (w == "avx512_bf16" || w == "amx_bf16") return true;
    }
    return false;
  }
  return false;
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision == Precision::fp32) return;
  const auto reason = precision_unavailable_reason(precision, device);
  if (!reason.empty()) throw InputError(reason);
  active_ = true;
  device_type_ = device.type();
  was_enabled_ = autocast_enabled(device_type_);
  previous_dtype_ = autocast_dtype(device_type_);
  set_autocast(device_type_, true, dtype_of(precision));
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The outermost scope drops the cast copies of the weights, as Python's
  // torch.autocast does on exit: the next step's weights differ.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_type_, was_enabled_, previous_dtype_);
}

void set_cuda_tf32(bool allowed) {
  // Matrix products only: cuDNN's convolutions keep PyTorch's default.
  at::globalContext().setAllowTF32CuBLAS(allowed);
}

}  // namespace aiayn
