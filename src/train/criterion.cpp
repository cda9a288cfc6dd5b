#include "src/train/criterion.h"

namespace aiayn {

namespace {

// A host batch tensor on the training device. To a GPU it goes from pinned
// memory without blocking, so the host goes on preparing the next batch
// while the copy and the step run.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (device.is_cpu()) return t;
  if (!device.is_cuda()) return t.to(device);
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

PositionLogits batch_logits(TransformerImpl& model, const Batch& batch, const torch::Device& device) {
  auto src = to_device(batch.src, device), tgt_in = to_device(batch.tgt_in, device);
  auto src_padding = to_device(batch.src_padding, device);
  auto memory = model.encode(src, src_padding);                                        // [B, S, d_model]
  auto hidden = model.decode(tgt_in, memory, src_padding);                             // [B, T, d_model]
  auto real = to_device((~batch.tgt_padding).flatten().nonzero().squeeze(1), device);  // [N]
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, real);                // [N, d_model]
  auto targets = to_device(batch.tgt_out.flatten(), device).index_select(0, real);     // [N]
  // The loss in fp32 whatever the precision of the products before it.
  return {model.logits(h).to(torch::kFloat32), targets};  // [N, V], [N]
}

LossSums batch_criterion(TransformerImpl& model, const Batch& batch, double label_smoothing,
                         const torch::Device& device) {
  auto p = batch_logits(model, batch, device);
  return label_smoothed_nll(p.logits, p.targets, label_smoothing);
}

}  // namespace aiayn
