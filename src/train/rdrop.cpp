#include "src/train/rdrop.h"

#include "src/train/criterion.h"

namespace aiayn {

LossSums rdrop_loss(const torch::Tensor& logits, const torch::Tensor& targets, double label_smoothing,
                    double alpha) {
  const int64_t n = targets.size(0);
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == 2 * n, "rdrop_loss: logits ", logits.sizes(),
              " are not two passes over ", n, " positions");
  auto both = label_smoothed_nll(logits, torch::cat({targets, targets}), label_smoothing);
  auto lprobs = torch::log_softmax(logits, -1);                          // [2N, V]
  auto first = lprobs.narrow(0, 0, n), second = lprobs.narrow(0, n, n);  // [N, V] each
  // KL(P1||P2) + KL(P2||P1) = sum (p1 - p2)(log p1 - log p2): one product, no
  // separate divergences.
  auto symmetric_kl = ((first.exp() - second.exp()) * (first - second)).sum();
  return {0.5 * both.loss + 0.25 * alpha * symmetric_kl, 0.5 * both.nll};
}

LossSums rdrop_criterion(TransformerImpl& model, const Batch& batch, double label_smoothing, double alpha,
                         const torch::Device& device) {
  Batch twice;
  twice.src = torch::cat({batch.src, batch.src});                          // [2B, S]
  twice.tgt_in = torch::cat({batch.tgt_in, batch.tgt_in});                 // [2B, T]
  twice.tgt_out = torch::cat({batch.tgt_out, batch.tgt_out});              // [2B, T]
  twice.src_padding = torch::cat({batch.src_padding, batch.src_padding});  // [2B, S]
  twice.tgt_padding = torch::cat({batch.tgt_padding, batch.tgt_padding});  // [2B, T]
  // Real positions are taken row by row, so copy one's N come first.
  auto p = batch_logits(model, twice, device);                   // [2N, V], [2N]
  auto targets = p.targets.narrow(0, 0, p.targets.size(0) / 2);  // [N]
  return rdrop_loss(p.logits, targets, label_smoothing, alpha);
}

}  // namespace aiayn
