// The whole model of section 3 (Figure 1): embeddings and positions, the
// encoder and decoder stacks, and the pre-softmax projection, with the weight
// tying of section 3.4.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "models/attention.h"
#include "models/config.h"
#include "models/decoder.h"
#include "models/embedding.h"
#include "models/encoder.h"
#include "models/positional.h"

namespace aiayn {

// The three kinds of attention sub-layer, as the attention dump names them.
enum class AttentionKind { encoder, decoder, cross };

// One head of one sub-layer: layer and head 0-based, as in the dump.
struct HeadRef {
  AttentionKind kind = AttentionKind::encoder;
  int64_t layer = 0, head = 0;
};

class TransformerImpl : public torch::nn::Module {
 public:
  // Builds the model with fresh Xavier-uniform weights; the vocabulary sizes
  // must be set. Seed with torch::manual_seed beforehand for reproducibility.
  explicit TransformerImpl(const ModelConfig& config);

  // src: [B, S] ids -> logits [B, T, tgt_vocab] for tgt_in: [B, T] ids
  // (bos + y[:-1]); padding masks derived from kPadId.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& tgt_in);

  // Source ids [B, S] and their padding [B, S] -> memory [B, S, d_model].
  torch::Tensor encode(const torch::Tensor& src, const torch::Tensor& src_padding,
                       AttentionMaps* capture = nullptr);
  // Target ids [B, T] -> decoder output [B, T, d_model]. tgt_padding may be
  // undefined (right padding never reaches a real position through the causal
  // mask). With a state, tgt_in holds the newest position(s) only.
  torch::Tensor decode(const torch::Tensor& tgt_in, const torch::Tensor& memory,
                       const torch::Tensor& src_padding, const torch::Tensor& tgt_padding = {},
                       DecoderState* state = nullptr, AttentionMaps* capture = nullptr);
  // Decoder output [..., d_model] -> logits [..., tgt_vocab].
  torch::Tensor logits(const torch::Tensor& hidden);

  // Int8 copies of every linear layer's weight, the pre-softmax projection's
  // included, for faster decoding on the CPU (models/int8_linear.h). The
  // float matrices they replace are released (the embedding stays: it is
  // also the lookup table), so the instance can only decode from then on.
  void quantize_int8();
  bool is_int8() const { return output_.quantized(); }
  // Every linear layer's float weight, the pre-softmax projection's
  // included, copied once into the layout of the CPU's vector unit, so
  // decoding's many small products stop repacking it at every call
  // (models/packed_linear.h). Decoding only: later changes to the
  // parameters are not seen. Does nothing where no packed kernel exists
  // (non-x86 CPUs, a CUDA device) or after quantize_int8().
  void pack_weights();
  bool is_packed() const { return output_.packed(); }

  // Head ablation (models/attention.h): the listed heads contribute zero
  // from now on, every other head is restored. Out-of-range refs fail a
  // TORCH_CHECK; callers check them against the config first.
  void mask_heads(const std::vector<HeadRef>& heads);
  MultiHeadAttentionImpl& attention(AttentionKind kind, int64_t layer);

  int64_t parameter_count() const;
  // "Transformer: 6+6 layers, d_model 512, ... 63,082,496 parameters".
  std::string summary() const;
  const ModelConfig& config() const { return config_; }

  TokenEmbedding src_embed{nullptr};
  TokenEmbedding tgt_embed{nullptr};  // src_embed itself when share_embeddings
  PositionalEncoding src_pos{nullptr}, tgt_pos{nullptr};
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  torch::nn::Linear generator{nullptr};  // absent when tie_output
  Dropout dropout{nullptr};

 private:
  // The pre-softmax projection (the target embedding, or the generator),
  // float or int8 (models/projection.h).
  Projection output_;
  // Dropout(Embedding * sqrt(d_model) + PE), sections 3.4, 3.5 and 5.4.
  torch::Tensor embed(TokenEmbedding& tokens, PositionalEncoding& positions, const torch::Tensor& ids,
                      int64_t offset);
  // Every attention (and whether it is encoder-decoder attention) and
  // feed-forward sub-layer, encoder's then decoder's.
  void for_each_sublayer(const std::function<void(MultiHeadAttentionImpl&, bool cross)>& attention,
                         const std::function<void(FeedForwardImpl&)>& feed_forward);

  ModelConfig config_;
};
TORCH_MODULE(Transformer);

}  // namespace aiayn
