// Scaled dot-product attention (section 3.2.1) and multi-head attention
// (section 3.2.2), shaped for incremental decoding and attention capture.
//
// Masks: bool, true = may not attend (torch::nn's convention), broadcastable
// to [B, h, T, S]. Caches and captured weights are explicit arguments.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "models/int8_linear.h"
#include "models/projection.h"

namespace aiayn {

// Keys and values of one attention sub-layer, split into heads.
struct KeyValue {
  torch::Tensor keys;    // [B, h, S, d_k]
  torch::Tensor values;  // [B, h, S, d_v]
  bool defined() const { return keys.defined(); }
  // Keeps the rows of `index` (beam reordering, dropping finished sentences).
  KeyValue select(const torch::Tensor& index) const;
};

// The self-attention keys and values of every position decoded so far, in
// buffers with room to grow: a step writes its one new position instead of
// copying the whole history, as torch::cat would.
struct KeyValueCache {
  torch::Tensor key_store, value_store;  // [B, h, capacity, d_k|d_v]
  int64_t length = 0;                    // positions held
  bool defined() const { return key_store.defined(); }
  // The positions held: [B, h, length, d] views of the stores.
  KeyValue view() const;
  // Appends kv's positions ([B, h, T, d]), growing the stores when full.
  void append(const KeyValue& kv);
  // Keeps the rows of `index` (beam reordering, dropping finished sentences),
  // copying each kept position once, into stores with room for one more.
  KeyValueCache select(const torch::Tensor& index) const;
};

// Attention weights captured during one forward pass, one entry per layer,
// each [B, h, T, S]; filled only when a pointer to it is passed down.
struct AttentionMaps {
  std::vector<torch::Tensor> encoder;  // encoder self-attention
  std::vector<torch::Tensor> decoder;  // decoder self-attention
  std::vector<torch::Tensor> cross;    // encoder-decoder attention
};

// [B, S] bool: true at padding positions of `ids`.
torch::Tensor padding_mask(const torch::Tensor& ids, int64_t pad_id);
// [B, S] padding mask -> [B, 1, 1, S], the form attention broadcasts.
torch::Tensor key_mask(const torch::Tensor& padding);
// [T, past + T] bool: query i (at position past + i) may not see later keys.
torch::Tensor causal_mask(int64_t length, int64_t past, const torch::Device& device);

// softmax(Q K^T / sqrt(d_k)) V, section 3.2.1. With `weights`, stores the
// attention weights that multiplied V ([B, h, T, S]). q may have r times the
// rows of k and v (beams sharing their sentence's memory; see attention_core).
// `causal` (decoder self-attention over whole sequences): a hint that the
// mask is the causal one, perhaps with padded keys at the end; the fused
// kernel then runs as causal without reading the mask (models/fused_attention.h).
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask, double dropout,
                                           bool training, torch::Tensor* weights = nullptr,
                                           bool causal = false);

struct MultiHeadAttentionOptions {
  MultiHeadAttentionOptions(int64_t d_model, int64_t heads)
      : d_model_(d_model), heads_(heads), d_k_(d_model / heads), d_v_(d_model / heads) {}
  /// Width of the model's hidden states.
  TORCH_ARG(int64_t, d_model);
  /// Number of heads h.
  TORCH_ARG(int64_t, heads);
  /// Width of each head's queries and keys (default d_model / h).
  TORCH_ARG(int64_t, d_k);
  /// Width of each head's values (default d_model / h).
  TORCH_ARG(int64_t, d_v);
  /// Dropout on the attention weights (0 in the paper).
  TORCH_ARG(double, dropout) = 0.0;
};

// MultiHead(Q, K, V) = Concat(head_1..head_h) W^O, head_i = Attention(Q W_i^Q,
// K W_i^K, V W_i^V). W^Q, W^K, W^V are stored fused as in_proj_weight
// ([h*(2 d_k + d_v), d_model], torch.nn.MultiheadAttention's layout), so
// self-attention projects all three with one matmul.
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options);
  void reset_parameters();

  // Queries, keys and values all from x [B, T, d_model]. With a cache, x holds
  // only the newest positions: their keys/values are appended to *cache and
  // the queries attend over everything cached.
  // `causal`: as scaled_dot_product_attention's hint.
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& mask,
                               KeyValueCache* cache = nullptr, torch::Tensor* weights = nullptr,
                               bool causal = false);
  // Keys and values of the encoder output, computed once per sentence.
  KeyValue project_memory(const torch::Tensor& memory);
  // Queries from x [B, T, d_model] over projected memory (section 3.2.3).
  torch::Tensor cross_attention(const torch::Tensor& x, const KeyValue& memory, const torch::Tensor& mask,
                                torch::Tensor* weights = nullptr);

  MultiHeadAttentionOptions options;
  torch::Tensor in_proj_weight;         // [h*(2 d_k + d_v), d_model]: W^Q; W^K; W^V
  torch::Tensor in_proj_bias;           // [h*(2 d_k + d_v)]
  torch::nn::Linear out_proj{nullptr};  // W^O: h*d_v -> d_model

  // Int8 copies of the projections for decoding; once made, every
  // projection uses them and the float weight matrices are released.
  void quantize_int8();
  // Packed float copies of the projections for decoding on the CPU
  // (models/packed_linear.h); the parameters stay and must not change.
  // Only those of its role: [W^Q; W^K; W^V] for self-attention, W^Q and
  // [W^K; W^V] apart for encoder-decoder attention; W^O for both.
  void pack_weights(bool cross);

  // Head ablation (Michel et al., 2019): from now on each listed head's
  // output is zero, so W^O sees nothing of it, and so are its captured
  // weights; {} restores every head. Heads are 0-based, < h.
  void mask_heads(const std::vector<int64_t>& heads);

 private:
  // Views of the parameters above, float or int8 (models/projection.h).
  Projection qkv_;        // [W^Q; W^K; W^V]: self-attention
  Projection q_;          // W^Q: encoder-decoder attention's queries
  Projection kv_;         // [W^K; W^V]: encoder-decoder attention's memory
  Projection o_;          // W^O
  torch::Tensor masked_;  // [n] long: the masked heads; undefined when none

  torch::Tensor split_heads(const torch::Tensor& x, int64_t width) const;
  torch::Tensor attend_and_merge(const torch::Tensor& q, const KeyValue& kv, const torch::Tensor& mask,
                                 torch::Tensor* weights, bool causal = false);
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace aiayn
