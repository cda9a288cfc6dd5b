// Dynamic int8 quantization of a linear layer for decoding: the weight is
// stored as int8 with one scale per output row; each call quantizes its input
// to 8 bits on the fly, multiplies in integers and rescales to float (as
// torch.ao.quantization.quantize_dynamic and CTranslate2's int8). Inference
// on the CPU only; training always uses the float weights.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "models/packed_int8_linear.h"

namespace aiayn {

class Int8Linear {
 public:
  Int8Linear() = default;
  // weight [out, in], bias [out] or undefined; copies them (the float
  // parameters stay as they are).
  Int8Linear(const torch::Tensor& weight, const torch::Tensor& bias);

  bool defined() const { return vnni_ != nullptr || !packed_.isNone(); }
  torch::Tensor operator()(const torch::Tensor& x) const;  // [..., in] -> [..., out]

 private:
  std::shared_ptr<const PackedInt8Linear> vnni_;  // on CPUs with AVX-512 VNNI
  c10::IValue packed_;  // elsewhere: the engine's packed weight (LinearPackedParamsBase)
  int64_t out_features_ = 0;
};

// "" when this LibTorch can run int8 decoding; else why not, as the rest of
// a one-line error. 2.x deprecates the legacy quantized ops int8 calls and
// may remove them (pytorch/ao#2259): configure checks for quantize_per_channel
// (cmake/libtorch.cmake), and this checks that the ops are registered.
std::string int8_unavailable_reason();
// The names in `ops` that LibTorch's dispatcher does not know, ", "-joined.
std::string int8_missing_ops(const std::vector<std::string>& ops);

// Selects LibTorch's quantized engine for int8 matrix products (onednn where
// available: on this machine about twice as fast as fp32 per product, and
// qnnpack slower than fp32) and returns its name; throws when none exists.
std::string select_int8_engine();

// Drops a float weight whose int8 copy replaced it (decoding-only models):
// the parameter stays registered, with no elements.
void release_float_weight(torch::Tensor& weight);

}  // namespace aiayn
