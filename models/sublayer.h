// What every encoder and decoder layer shares: its options, and the residual
// connection around each sub-layer (sections 3.1 and 5.4).
#pragma once
#include <torch/torch.h>

#include "models/config.h"
#include "models/dropout.h"

namespace aiayn {

struct LayerOptions {
  LayerOptions(int64_t d_model, int64_t heads, int64_t d_ff)
      : d_model_(d_model), heads_(heads), d_k_(d_model / heads), d_v_(d_model / heads), d_ff_(d_ff) {}
  /// Width of hidden states.
  TORCH_ARG(int64_t, d_model);
  /// Attention heads h.
  TORCH_ARG(int64_t, heads);
  /// Per-head query/key width.
  TORCH_ARG(int64_t, d_k);
  /// Per-head value width.
  TORCH_ARG(int64_t, d_v);
  /// Inner width of the position-wise feed-forward network.
  TORCH_ARG(int64_t, d_ff);
  /// Residual dropout on each sub-layer's output (section 5.4).
  TORCH_ARG(double, p_drop) = 0.1;
  /// Dropout on attention weights.
  TORCH_ARG(double, attention_dropout) = 0.0;
  /// Dropout after the feed-forward ReLU.
  TORCH_ARG(double, activation_dropout) = 0.0;
  /// Pre-LN (x + Sublayer(LayerNorm(x))) instead of the paper's post-LN.
  TORCH_ARG(bool, norm_first) = false;
  /// LayerNorm epsilon.
  TORCH_ARG(double, layer_norm_eps) = 1e-5;

 public:
  static LayerOptions from(const ModelConfig& c);
};

// Post-LN: LayerNorm(x + Dropout(Sublayer(x))), as section 3.1 with the
// residual dropout of section 5.4; pre-LN: x + Dropout(Sublayer(LayerNorm(x))).
template <typename Sublayer>
torch::Tensor residual(const torch::Tensor& x, torch::nn::LayerNorm& norm, Dropout& dropout, bool norm_first,
                       Sublayer&& sublayer) {
  if (norm_first) return x + dropout(sublayer(norm(x)));
  return norm(x + dropout(sublayer(x)));
}

inline torch::nn::LayerNorm make_norm(const LayerOptions& o) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.d_model()}).eps(o.layer_norm_eps()));
}

}  // namespace aiayn
