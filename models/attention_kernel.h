// The core of scaled dot-product attention, softmax(Q K^T / sqrt(d_k)) V
// (section 3.2.1), as one fused CPU loop per (sentence, head), with its
// backward pass.
//
// Why: Debian's LibTorch 1.13 has no MKL, and its batched matmul runs one
// small GEMM per matrix (an aten::select plus an aten::mm for each of the
// B*h heads), so the dispatch overhead of two matmuls per attention layer,
// not their arithmetic, dominated decoding and a good part of training. Here
// the scores of one head never leave the cache and no view is created per head.
#pragma once
#include <torch/torch.h>

namespace aiayn {

// Whether attention_core can run these tensors: CPU float32, last dimension
// contiguous, no dropout on the weights.
bool attention_core_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            double dropout, bool training);

// q [B, h, T, d_k], k [B, h, S, d_k], v [B, h, S, d_v] (any strides with the
// last dimension contiguous); mask bool broadcastable to [B, h, T, S], true =
// may not attend, or undefined. For beam search, q may have r*B rows whose
// consecutive groups of r share one sentence's keys, values and mask (then
// k, v and a 4-d mask have B rows): memory is kept per sentence, not per beam. Returns [B, h, T, d_v];
// differentiable in q, k and v. With `weights`, stores the softmax weights [B, h, T, S]. A query whose keys
// are all masked gets zero weights (and a zero output).
torch::Tensor attention_core(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& mask, torch::Tensor* weights = nullptr);

}  // namespace aiayn
