// A learned linear projection x W^T + b as the modules apply it (W^Q, W^K,
// W^V, W^O of section 3.2.2, W1 and W2 of section 3.3, the pre-softmax
// projection of section 3.4): over the float parameters, or, for decoding,
// over a copy of them: int8 after quantize() (models/int8_linear.h), or the
// float weight laid out for the CPU's vector unit after pack()
// (models/packed_linear.h). These are kinds of projection, so the modules
// call theirs the same way and never branch on them.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "models/int8_linear.h"
#include "models/packed_linear.h"

namespace aiayn {

class Projection {
 public:
  Projection() = default;
  // Rows [first, first + rows) of weight [out, in] and bias [out] (bias may
  // be undefined; rows -1: all of them). The parameters themselves are kept
  // and narrowed at each call, so updates, loading and moves are seen.
  Projection(torch::Tensor weight, torch::Tensor bias, int64_t first = 0, int64_t rows = -1);

  torch::Tensor operator()(const torch::Tensor& x) const;  // [..., in] -> [..., rows]
  // From now on an int8 copy of the rows answers (decoding, CPU only); the
  // float weight may then be released (release_float_weight).
  void quantize();
  bool quantized() const { return int8_ != nullptr; }
  // From now on a packed copy of the float rows answers (decoding on a CPU
  // with AVX2 or AVX-512; elsewhere, and after quantize(), nothing changes).
  // The parameters must not change afterwards: the copy would not see it.
  void pack();
  bool packed() const { return packed_ != nullptr; }

 private:
  torch::Tensor weight() const;
  torch::Tensor bias() const;

  torch::Tensor weight_, bias_;
  int64_t first_ = 0, rows_ = -1;
  std::shared_ptr<const Int8Linear> int8_;
  std::shared_ptr<const PackedLinear> packed_;
};

}  // namespace aiayn
