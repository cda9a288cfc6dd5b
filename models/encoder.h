// The encoder, section 3.1: N identical layers, each self-attention then a
// position-wise feed-forward network, each wrapped in a residual connection.
#pragma once
#include <torch/torch.h>

#include "models/attention.h"
#include "models/feed_forward.h"
#include "models/sublayer.h"

namespace aiayn {

class EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit EncoderLayerImpl(const LayerOptions& options);
  // x: [B, S, d_model]; mask: [B, 1, 1, S] key padding (true = padding).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, AttentionMaps* capture = nullptr);

  LayerOptions options;
  MultiHeadAttention self_attn{nullptr};
  FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Dropout dropout{nullptr};
};
TORCH_MODULE(EncoderLayer);

class EncoderImpl : public torch::nn::Module {
 public:
  EncoderImpl(const LayerOptions& options, int64_t layers);
  // x: embedded source [B, S, d_model]; padding: [B, S] (true = padding).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& padding,
                        AttentionMaps* capture = nullptr);

  torch::nn::ModuleList layers;
  torch::nn::LayerNorm norm{nullptr};  // only with pre-LN: the stack's final norm
};
TORCH_MODULE(Encoder);

}  // namespace aiayn
