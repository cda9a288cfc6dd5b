// A learned linear projection x W^T + b as the modules apply it (W^Q, W^K,
// W^V, W^O of section 3.2.2, W1 and W2 of section 3.3, the pre-softmax
// projection of section 3.4): over the float parameters, or, after
// quantize(), over an int8 copy of them (models/int8_linear.h). Int8 is a
// kind of projection, so the modules call theirs the same way and never
// branch on it.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "models/int8_linear.h"

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

 private:
  torch::Tensor weight() const;
  torch::Tensor bias() const;

  torch::Tensor weight_, bias_;
  int64_t first_ = 0, rows_ = -1;
  std::shared_ptr<const Int8Linear> int8_;
};

}  // namespace aiayn
