// The decoder, section 3.1: N identical layers of masked self-attention,
// encoder-decoder attention and a feed-forward network, with the state that
// incremental decoding carries from one step to the next.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "models/attention.h"
#include "models/feed_forward.h"
#include "models/sublayer.h"

namespace aiayn {

// What one decoder layer remembers between decoding steps.
struct DecoderLayerState {
  KeyValueCache self;  // self-attention keys/values of all positions so far
  KeyValue memory;     // encoder-decoder keys/values, projected once per sentence
};

// Incremental decoding state: per-layer caches and the number of positions
// already decoded (the next position's index).
struct DecoderState {
  std::vector<DecoderLayerState> layers;
  int64_t steps = 0;
  // Keeps batch rows `index` (beam reordering, dropping finished sentences).
  void select(const torch::Tensor& index);
  // Beam search, where the encoder-decoder keys/values are kept once per
  // sentence: keeps hypothesis rows `rows` and sentences `sentences`
  // (undefined = all sentences stay).
  void select(const torch::Tensor& rows, const torch::Tensor& sentences);
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const LayerOptions& options);
  // x: [B, T, d_model]; memory: [B, S, d_model]; self_mask: broadcastable to
  // [B, 1, T, past + T]; memory_mask: [B, 1, 1, S]. For beam search, x may
  // hold r rows (beams) per memory row. With a state, x holds the
  // newest positions only and the state is updated. `causal`: self_mask is
  // the causal mask of whole sequences (and right padding), a hint for the
  // fused kernel (models/attention.h).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& self_mask,
                        const torch::Tensor& memory_mask, DecoderLayerState* state = nullptr,
                        AttentionMaps* capture = nullptr, bool causal = false);

  LayerOptions options;
  MultiHeadAttention self_attn{nullptr};
  MultiHeadAttention multihead_attn{nullptr};  // encoder-decoder attention
  FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Dropout dropout{nullptr};
};
TORCH_MODULE(DecoderLayer);

class DecoderImpl : public torch::nn::Module {
 public:
  DecoderImpl(const LayerOptions& options, int64_t layers);
  // x: embedded target [B, T, d_model]; memory: [B, S, d_model];
  // tgt_padding: [B, T] or undefined; memory_padding: [B, S]. Without a state
  // the causal mask of section 3.2.3 is applied; with one, x continues it.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& tgt_padding,
                        const torch::Tensor& memory_padding, DecoderState* state = nullptr,
                        AttentionMaps* capture = nullptr);

  torch::nn::ModuleList layers;
  torch::nn::LayerNorm norm{nullptr};  // only with pre-LN
};
TORCH_MODULE(Decoder);

}  // namespace aiayn
