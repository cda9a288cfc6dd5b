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
LossSums label_smoothed_nll(const torch::Tensor& logits, const torch::Tensor& targets,
                            double epsilon);

}  // namespace aiayn
