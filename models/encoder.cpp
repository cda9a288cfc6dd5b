#include "models/encoder.h"

namespace aiayn {

LayerOptions LayerOptions::from(const ModelConfig& c) {
  return LayerOptions(c.d_model, c.heads, c.d_ff)
      .d_k(c.d_k)
      .d_v(c.d_v)
      .p_drop(c.p_drop)
      .attention_dropout(c.attention_dropout)
      .activation_dropout(c.activation_dropout)
      .norm_first(c.norm_first)
      .layer_norm_eps(c.layer_norm_eps);
}

EncoderLayerImpl::EncoderLayerImpl(const LayerOptions& o) : options(o) {
  self_attn =
      register_module("self_attn", MultiHeadAttention(MultiHeadAttentionOptions(o.d_model(), o.heads())
                                                          .d_k(o.d_k())
                                                          .d_v(o.d_v())
                                                          .dropout(o.attention_dropout())));
  feed_forward = register_module(
      "feed_forward",
      FeedForward(FeedForwardOptions(o.d_model(), o.d_ff()).activation_dropout(o.activation_dropout())));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  dropout = register_module("dropout", Dropout(o.p_drop()));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                        AttentionMaps* capture) {
  torch::Tensor weights;
  auto h = residual(x, norm1, dropout, options.norm_first(), [&](const torch::Tensor& in) {
    return self_attn->self_attention(in, mask, nullptr, capture ? &weights : nullptr);
  });  // [B, S, d_model]
  if (capture != nullptr) capture->encoder.push_back(weights);
  return residual(h, norm2, dropout, options.norm_first(),
                  [&](const torch::Tensor& in) { return feed_forward(in); });  // [B, S, d_model]
}

EncoderImpl::EncoderImpl(const LayerOptions& o, int64_t n) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(EncoderLayer(o));
  if (o.norm_first()) norm = register_module("norm", make_norm(o));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& padding,
                                   AttentionMaps* capture) {
  auto mask = padding.defined() ? key_mask(padding) : torch::Tensor();  // [B, 1, 1, S]
  auto h = x;
  for (const auto& layer : *layers) h = layer->as<EncoderLayer>()->forward(h, mask, capture);
  return norm ? norm(h) : h;  // [B, S, d_model]
}

}  // namespace aiayn
