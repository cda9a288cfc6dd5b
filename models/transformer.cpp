#include "models/transformer.h"

#include <sstream>

namespace aiayn {

namespace F = torch::nn::functional;

TransformerImpl::TransformerImpl(const ModelConfig& c) : config_(c) {
  TORCH_CHECK(c.src_vocab > 0 && c.tgt_vocab > 0,
              "model config: src_vocab and tgt_vocab must be set before a model is built");
  TORCH_CHECK(!c.share_embeddings || c.src_vocab == c.tgt_vocab,
              "share_embeddings needs src_vocab == tgt_vocab");
  // Tied modules are registered once, so parameters() (and an optimizer)
  // sees each shared matrix exactly once.
  src_embed = register_module("src_embed",
                              TokenEmbedding(TokenEmbeddingOptions(c.src_vocab, c.d_model).pad_id(kPadId)));
  tgt_embed =
      c.share_embeddings
          ? src_embed
          : register_module("tgt_embed",
                            TokenEmbedding(TokenEmbeddingOptions(c.tgt_vocab, c.d_model).pad_id(kPadId)));
  auto positions =
      PositionalEncodingOptions(c.d_model, c.max_positions).learned(c.positional == Positional::learned);
  src_pos = register_module("src_pos", PositionalEncoding(positions));
  tgt_pos = register_module("tgt_pos", PositionalEncoding(positions));
  auto layer = LayerOptions::from(c);
  encoder = register_module("encoder", Encoder(layer, c.encoder_layers));
  decoder = register_module("decoder", Decoder(layer, c.decoder_layers));
  if (!c.tie_output) {
    generator = register_module(
        "generator", torch::nn::Linear(torch::nn::LinearOptions(c.d_model, c.tgt_vocab).bias(false)));
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(generator->weight);
  }
  dropout = register_module("dropout", Dropout(c.p_drop));
  output_ = Projection(generator ? generator->weight : tgt_embed->weight, {});
}

torch::Tensor TransformerImpl::embed(TokenEmbedding& tokens, PositionalEncoding& positions,
                                     const torch::Tensor& ids, int64_t offset) {
  auto x = tokens(ids) + positions(offset, ids.size(1));  // [B, T, d_model]
  return dropout(x);
}

torch::Tensor TransformerImpl::encode(const torch::Tensor& src, const torch::Tensor& src_padding,
                                      AttentionMaps* capture) {
  return encoder(embed(src_embed, src_pos, src, 0), src_padding, capture);  // [B, S, d_model]
}

torch::Tensor TransformerImpl::decode(const torch::Tensor& tgt_in, const torch::Tensor& memory,
                                      const torch::Tensor& src_padding, const torch::Tensor& tgt_padding,
                                      DecoderState* state, AttentionMaps* capture) {
  auto x = embed(tgt_embed, tgt_pos, tgt_in, state ? state->steps : 0);  // [B, T, d_model]
  return decoder(x, memory, tgt_padding, src_padding, state, capture);   // [B, T, d_model]
}

torch::Tensor TransformerImpl::logits(const torch::Tensor& hidden) {
  // Section 3.4: with tie_output the pre-softmax projection is the target
  // embedding matrix itself (without the sqrt(d_model) factor).
  return output_(hidden);  // [..., V]
}

void TransformerImpl::for_each_sublayer(
    const std::function<void(MultiHeadAttentionImpl&, bool cross)>& attention,
    const std::function<void(FeedForwardImpl&)>& feed_forward) {
  for (const auto& m : *encoder->layers) {
    auto* layer = m->as<EncoderLayer>();
    attention(*layer->self_attn, false);
    feed_forward(*layer->feed_forward);
  }
  for (const auto& m : *decoder->layers) {
    auto* layer = m->as<DecoderLayer>();
    attention(*layer->self_attn, false);
    attention(*layer->multihead_attn, true);
    feed_forward(*layer->feed_forward);
  }
}

void TransformerImpl::quantize_int8() {
  for_each_sublayer([](MultiHeadAttentionImpl& a, bool) { a.quantize_int8(); },
                    [](FeedForwardImpl& f) { f.quantize_int8(); });
  output_.quantize();
  if (generator) release_float_weight(generator->weight);
}

void TransformerImpl::pack_weights() {
  if (is_int8()) return;
  for_each_sublayer([](MultiHeadAttentionImpl& a, bool cross) { a.pack_weights(cross); },
                    [](FeedForwardImpl& f) { f.pack_weights(); });
  output_.pack();
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& src, const torch::Tensor& tgt_in) {
  auto src_padding = padding_mask(src, kPadId);  // [B, S]
  auto memory = encode(src, src_padding);        // [B, S, d_model]
  return logits(decode(tgt_in, memory, src_padding, padding_mask(tgt_in, kPadId)));
}

int64_t TransformerImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

MultiHeadAttentionImpl& TransformerImpl::attention(AttentionKind kind, int64_t layer) {
  if (kind == AttentionKind::encoder) {
    TORCH_CHECK(layer >= 0 && layer < config_.encoder_layers, "attention: encoder layer ", layer);
    return *encoder->layers[static_cast<size_t>(layer)]->as<EncoderLayer>()->self_attn;
  }
  TORCH_CHECK(layer >= 0 && layer < config_.decoder_layers, "attention: decoder layer ", layer);
  auto* l = decoder->layers[static_cast<size_t>(layer)]->as<DecoderLayer>();
  return kind == AttentionKind::decoder ? *l->self_attn : *l->multihead_attn;
}

void TransformerImpl::mask_heads(const std::vector<HeadRef>& heads) {
  // Checked before any layer changes, so a bad list leaves the model as it was.
  for (const auto& h : heads) {
    TORCH_CHECK(h.layer >= 0 && h.layer < (h.kind == AttentionKind::encoder ? config_.encoder_layers
                                                                            : config_.decoder_layers),
                "mask_heads: layer ", h.layer);
    TORCH_CHECK(h.head >= 0 && h.head < config_.heads, "mask_heads: head ", h.head, " of ", config_.heads);
  }
  const AttentionKind kinds[] = {AttentionKind::encoder, AttentionKind::decoder, AttentionKind::cross};
  for (auto kind : kinds) {
    const int64_t layers = kind == AttentionKind::encoder ? config_.encoder_layers : config_.decoder_layers;
    for (int64_t layer = 0; layer < layers; ++layer) {
      std::vector<int64_t> masked;
      for (const auto& h : heads)
        if (h.kind == kind && h.layer == layer) masked.push_back(h.head);
      attention(kind, layer).mask_heads(masked);
    }
  }
}

std::string TransformerImpl::summary() const {
  const auto& c = config_;
  std::ostringstream s;
  s << "Transformer: " << c.encoder_layers << "+" << c.decoder_layers << " layers, d_model " << c.d_model
    << ", d_ff " << c.d_ff << ", heads " << c.heads << " (d_k " << c.d_k << ", d_v " << c.d_v << "), P_drop "
    << c.p_drop << ", " << to_string(c.positional) << " positions, " << (c.norm_first ? "pre-LN" : "post-LN")
    << ", vocab " << c.src_vocab << "/" << c.tgt_vocab
    << ", tying: " << (c.share_embeddings ? "src=tgt" : "none") << (c.tie_output ? ", tgt=output" : "")
    << "\n";
  const int64_t n = parameter_count();
  std::string digits = std::to_string(n), grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  s << "parameters: " << grouped << " (" << std::fixed;
  s.precision(1);
  s << n / 1e6 << "M)";
  return s.str();
}

}  // namespace aiayn
