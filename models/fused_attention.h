// LibTorch 2.x's fused scaled_dot_product_attention (flash or
// memory-efficient kernels on CUDA, a fused kernel on the CPU) behind our
// mask convention. Used by attention (models/attention.cpp) wherever no
// attention weights are asked for and our own CPU kernel does not apply;
// LibTorch 1.13 has no such operator, and there the explicit path runs.
#pragma once
#include <torch/torch.h>

namespace aiayn {

// Whether this build's LibTorch has the fused operator (2.0 and later).
bool fused_attention_available();

// softmax(q k^T / sqrt(d_k)) v with dropout p on the weights, section 3.2.1.
// q [B, h, T, d_k], k [B, h, S, d_k], v [B, h, S, d_v]; mask broadcastable
// to [B, h, T, S] in our convention (bool, true = may not attend) or
// undefined. `causal`: the mask is the causal one of aligned queries and
// keys (T == S), perhaps with padded keys at the end, which no real query
// sees: the operator's is_causal replaces it (CUDA's flash kernel takes no
// mask). Rows of padded queries then differ; nothing reads them. Throws
// where fused_attention_available() is false.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& mask, double dropout_p, bool causal = false);

}  // namespace aiayn
