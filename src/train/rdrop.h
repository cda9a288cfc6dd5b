// R-Drop (Liang et al., 2021, "R-Drop: Regularized Dropout for Neural
// Networks"): every batch runs through the model twice, with independent
// dropout masks, and the loss adds to the two passes' cross-entropy the
// symmetric KL divergence between their output distributions, which pulls
// the sub-models that dropout samples towards one prediction. Its authors
// report it as the largest single gain on small translation sets.
#pragma once
#include <torch/torch.h>

#include "models/transformer.h"
#include "src/data/batching.h"
#include "src/train/loss.h"

namespace aiayn {

// Two passes' fp32 logits at the same N positions (pass one's rows, then
// pass two's: [2N, V]) and their targets [N]. The paper's loss is
//   CE1 + CE2 + alpha/2 (KL(P1||P2) + KL(P2||P1)),
// with CE the label-smoothed cross-entropy (section 5.4). This returns half
// of it, so that .loss sits on the scale of one pass's CE (the learning rate
// and the log's perplexity mean what they mean without R-Drop): .loss =
// (CE1 + CE2)/2 + alpha/4 (KL12 + KL21), summed over positions; .nll is the
// two passes' mean NLL sum.
LossSums rdrop_loss(const torch::Tensor& logits, const torch::Tensor& targets, double label_smoothing,
                    double alpha);

// The batch twice in one forward pass (its rows stacked on themselves, so
// each copy draws its own dropout masks), then rdrop_loss.
LossSums rdrop_criterion(TransformerImpl& model, const Batch& batch, double label_smoothing, double alpha,
                         const torch::Device& device);

}  // namespace aiayn
