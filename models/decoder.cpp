#include "models/decoder.h"

namespace aiayn {

void DecoderState::select(const torch::Tensor& index) { select(index, index); }

void DecoderState::select(const torch::Tensor& rows, const torch::Tensor& sentences) {
  for (auto& layer : layers) {
    layer.self = layer.self.select(rows);
    if (sentences.defined() && layer.memory.defined()) layer.memory = layer.memory.select(sentences);
  }
}

DecoderLayerImpl::DecoderLayerImpl(const LayerOptions& o) : options(o) {
  auto attention = [&] {
    return MultiHeadAttention(MultiHeadAttentionOptions(o.d_model(), o.heads())
                                  .d_k(o.d_k())
                                  .d_v(o.d_v())
                                  .dropout(o.attention_dropout()));
  };
  self_attn = register_module("self_attn", attention());
  multihead_attn = register_module("multihead_attn", attention());
  feed_forward = register_module(
      "feed_forward",
      FeedForward(FeedForwardOptions(o.d_model(), o.d_ff()).activation_dropout(o.activation_dropout())));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  norm3 = register_module("norm3", make_norm(o));
  dropout = register_module("dropout", Dropout(o.p_drop()));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                        const torch::Tensor& self_mask, const torch::Tensor& memory_mask,
                                        DecoderLayerState* state, AttentionMaps* capture, bool causal) {
  torch::Tensor self_weights, cross_weights;
  auto h = residual(x, norm1, dropout, options.norm_first(), [&](const torch::Tensor& in) {
    return self_attn->self_attention(in, self_mask, state ? &state->self : nullptr,
                                     capture ? &self_weights : nullptr, causal);
  });  // [B, T, d_model]
  KeyValue projected;
  KeyValue& kv = state ? state->memory : projected;
  if (!kv.defined()) kv = multihead_attn->project_memory(memory);  // [B, h, S, d_k|d_v]
  h = residual(h, norm2, dropout, options.norm_first(), [&](const torch::Tensor& in) {
    return multihead_attn->cross_attention(in, kv, memory_mask, capture ? &cross_weights : nullptr);
  });  // [B, T, d_model]
  if (capture != nullptr) {
    capture->decoder.push_back(self_weights);
    capture->cross.push_back(cross_weights);
  }
  return residual(h, norm3, dropout, options.norm_first(),
                  [&](const torch::Tensor& in) { return feed_forward(in); });  // [B, T, d_model]
}

DecoderImpl::DecoderImpl(const LayerOptions& o, int64_t n) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(DecoderLayer(o));
  if (o.norm_first()) norm = register_module("norm", make_norm(o));
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& x, const torch::Tensor& memory,
                                   const torch::Tensor& tgt_padding, const torch::Tensor& memory_padding,
                                   DecoderState* state, AttentionMaps* capture) {
  const int64_t length = x.size(1);
  const int64_t past = state ? state->steps : 0;
  if (state != nullptr && state->layers.empty()) state->layers.resize(layers->size());
  // A single new position may see every earlier one: no causal mask needed.
  torch::Tensor self_mask;
  if (length > 1) self_mask = causal_mask(length, past, x.device());  // [T, past + T]
  if (tgt_padding.defined()) {
    TORCH_CHECK(past == 0, "Decoder: tgt_padding is for whole sequences, not incremental steps");
    auto pad = key_mask(tgt_padding);                                   // [B, 1, 1, T]
    self_mask = self_mask.defined() ? self_mask.logical_or(pad) : pad;  // [B, 1, T, T]
  }
  auto memory_mask = memory_padding.defined() ? key_mask(memory_padding) : torch::Tensor();
  // Whole sequences (training, validation, recomputed prefixes): the fused
  // kernel may run causal instead of reading the mask (section 3.2.3's
  // masking of subsequent positions either way).
  const bool causal = length > 1 && past == 0;
  auto h = x;
  for (size_t i = 0; i < layers->size(); ++i) {
    h = layers[i]->as<DecoderLayer>()->forward(h, memory, self_mask, memory_mask,
                                               state ? &state->layers[i] : nullptr, capture, causal);
  }
  if (state != nullptr) state->steps += length;
  return norm ? norm(h) : h;  // [B, T, d_model]
}

}  // namespace aiayn
