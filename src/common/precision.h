// Mixed precision: the matrix products (and what LibTorch's autocast lists
// with them) in bf16 or fp16, while weights, optimizer state, layer norms,
// softmax and the loss stay fp32 (Micikevicius et al., 2018). One switch for
// training (train.precision) and decoding (--precision).
#pragma once
#include <torch/torch.h>

#include <string>

namespace aiayn {

enum class Precision { fp32, bf16, fp16 };

const char* to_string(Precision p);
// "fp32", "bf16" or "fp16"; InputError naming `origin` otherwise.
Precision parse_precision(const std::string& text, const std::string& origin);

// Why `precision` cannot run on `device` with this LibTorch ("" when it
// can): fp16 on the CPU needs LibTorch 2.x's autocast.
std::string precision_unavailable_reason(Precision precision, const torch::Device& device);

// Whether this CPU multiplies bf16 natively (AVX512_BF16 or AMX); without it
// oneDNN emulates bf16 and it runs slower than fp32.
bool cpu_has_native_bf16();

// Autocast on `device` for the scope of the object: ops on LibTorch's
// lower-precision list run in `precision`, the rest keep their types. fp32
// does nothing. The cast weights are cached for the scope and dropped at
// its end, so an optimizer step between two scopes is always seen.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  torch::DeviceType device_type_ = torch::kCPU;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat32;
};

// TF32 for CUDA's fp32 matrix products (cuBLAS; Ampere and later); no
// effect on other devices.
void set_cuda_tf32(bool allowed);

}  // namespace aiayn
