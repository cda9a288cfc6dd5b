#include "models/fused_attention.h"

namespace aiayn {

// The one guard for this version-specific call.
#if TORCH_VERSION_MAJOR >= 2

bool fused_attention_available() { return true; }

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, double dropout_p, bool causal) {
  if (causal && q.size(2) == k.size(2)) {
    return at::scaled_dot_product_attention(q, k, v, {}, dropout_p, /*is_causal=*/true);  // [B, h, T, d_v]
  }
  // The operator's boolean mask says where a query MAY attend: the opposite
  // of ours, converted here and nowhere else.
  c10::optional<torch::Tensor> allowed;
  if (mask.defined()) allowed = mask.logical_not();  // broadcastable to [B, h, T, S]
  return at::scaled_dot_product_attention(q, k, v, allowed, dropout_p,
                                          /*is_causal=*/false);  // [B, h, T, d_v]
}

#else

bool fused_attention_available() { return false; }

torch::Tensor fused_attention(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                              const torch::Tensor&, double, bool) {
  TORCH_CHECK(false, "fused attention needs LibTorch 2.0 or later; this is ", TORCH_VERSION);
}

#endif

}  // namespace aiayn
