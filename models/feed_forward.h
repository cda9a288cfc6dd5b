// Position-wise feed-forward network, section 3.3: FFN(x) = max(0, x W1 + b1) W2 + b2.
#pragma once
#include <torch/torch.h>

#include "models/int8_linear.h"
#include "models/projection.h"

namespace aiayn {

struct FeedForwardOptions {
  FeedForwardOptions(int64_t d_model, int64_t d_ff) : d_model_(d_model), d_ff_(d_ff) {}
  /// Input and output width.
  TORCH_ARG(int64_t, d_model);
  /// Inner width (2048 in the base model).
  TORCH_ARG(int64_t, d_ff);
  /// Dropout after the ReLU (not in the paper).
  TORCH_ARG(double, activation_dropout) = 0.0;
};

class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, d_model] -> [B, T, d_model]

  FeedForwardOptions options;
  torch::nn::Linear linear1{nullptr};  // W1: d_model -> d_ff
  torch::nn::Linear linear2{nullptr};  // W2: d_ff -> d_model

  // Int8 copies of W1 and W2 for decoding (see models/int8_linear.h); the
  // float matrices are released.
  void quantize_int8();
  // Packed float copies of W1 and W2 for decoding on the CPU (models/packed_linear.h).
  void pack_weights();

 private:
  Projection w1_, w2_;  // views of linear1 and linear2, float or int8 (models/projection.h)
};
TORCH_MODULE(FeedForward);

}  // namespace aiayn
