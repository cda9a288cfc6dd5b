// An int8 linear layer for decoding on CPUs with AVX-512 VNNI, laid out once
// for vpdpbusd in the column panels of PackedLinear (models/packed_linear.h).
// The weight is int8 with one scale per output row (symmetric); each call
// quantizes each input row on its own (symmetric, scale max|x_row| / 127, as
// CTranslate2 does), multiplies 4 bytes at a time into int32 and rescales.
// It replaces LibTorch's quantized engine, whose oneDNN kernels are built per
// input shape and scale and ran slower than our fp32 (issue 38). Inference only.
#pragma once
#include <torch/torch.h>

namespace aiayn {

class PackedInt8Linear {
 public:
  // Whether this CPU has AVX-512 VNNI (and the AVX-512 BW and VL it builds on).
  static bool available();

  // weight [out, in], bias [out] or undefined; copies them.
  PackedInt8Linear(const torch::Tensor& weight, const torch::Tensor& bias);

  torch::Tensor operator()(const torch::Tensor& x) const;  // [..., in] -> [..., out]

  // The layer's function as this kernel computes it, in plain LibTorch ops:
  // the device-generic reference the tests hold the kernel to.
  static torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias);

 private:
  torch::Tensor panels_;  // int8 [panels, in4 / 4, 32, 4]: W^T, 4 inputs per lane, zero-padded
  torch::Tensor scales_;  // float [panels * 32]: each output row's weight scale
  torch::Tensor offset_;  // int32 [panels * 32]: 128 * sum of the row's int8 weights
  torch::Tensor bias_;    // float [panels * 32], zeros where there is none
  int64_t in_ = 0, in4_ = 0, out_ = 0;
};

}  // namespace aiayn
