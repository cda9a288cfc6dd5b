// Label-smoothed cross-entropy, section 5.4 (epsilon_ls = 0.1), over the real
// target positions only.
#pragma once
#include <torch/torch.h>

namespace aiayn {

struct LossSums {
  torch::Tensor loss;  // scalar: sum of smoothed losses (what is optimised)
  torch::Tensor nll;   // scalar: sum of negative log-likelihoods (for perplexity)
};

// logits [N, V] and targets [N] of real (non-padding) positions. The smoothed
// target puts 1 - epsilon on the reference and epsilon spread uniformly over
// the vocabulary (the form of torch.nn.CrossEntropyLoss(label_smoothing)).
// On CPU float32 logits this runs as one fused kernel (two passes over the
// logits, forward and backward; the sums are double, in row order);
// elsewhere (a GPU, other dtypes) from LibTorch ops that keep only the
// log-sum-exp per row for the backward pass, not the [N, V] log-softmax of
// label_smoothed_nll_composed. Both return double sums.
LossSums label_smoothed_nll(const torch::Tensor& logits, const torch::Tensor& targets, double epsilon);

// The same from LibTorch ops (log_softmax, gather, mean): any device and
// dtype, and the definition the fused kernel is tested against.
LossSums label_smoothed_nll_composed(const torch::Tensor& logits, const torch::Tensor& targets,
                                     double epsilon);

}  // namespace aiayn
