// The criterion, one path for training and validation alike: the model's
// label-smoothed cross-entropy (section 5.4) over a batch's real target
// positions, the vocabulary projection computed only there.
#pragma once
#include <torch/torch.h>

#include "models/transformer.h"
#include "src/data/batching.h"
#include "src/train/loss.h"

namespace aiayn {

// Sums over the batch (src/train/loss.h); training optimises .loss with its label
// smoothing, validation reads .nll (smoothing 0 there). Builds the autograd
// graph unless a NoGradGuard is active.
LossSums batch_criterion(TransformerImpl& model, const Batch& batch, double label_smoothing,
                         const torch::Device& device);

// The model's fp32 logits at the batch's real target positions, row by row
// ([N, V]), and their targets ([N]): what a criterion is computed over.
struct PositionLogits {
  torch::Tensor logits;   // [N, V] float32
  torch::Tensor targets;  // [N]
};
PositionLogits batch_logits(TransformerImpl& model, const Batch& batch, const torch::Device& device);

}  // namespace aiayn
