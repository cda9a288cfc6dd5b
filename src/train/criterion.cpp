#include "src/train/criterion.h"

namespace aiayn {

LossSums batch_criterion(TransformerImpl& model, const Batch& batch, double label_smoothing,
                         const torch::Device& device) {
  auto src = batch.src.to(device), tgt_in = batch.tgt_in.to(device);
  auto src_padding = batch.src_padding.to(device);
  auto memory = model.encode(src, src_padding);            // [B, S, d_model]
  auto hidden = model.decode(tgt_in, memory, src_padding);  // [B, T, d_model]
  auto real = (~batch.tgt_padding).flatten().nonzero().squeeze(1).to(device);  // [N]
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, real);       // [N, d_model]
  auto targets = batch.tgt_out.flatten().to(device).index_select(0, real);    // [N]
  return label_smoothed_nll(model.logits(h), targets, label_smoothing);
}

}  // namespace aiayn
