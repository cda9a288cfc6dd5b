#include "models/config.h"

namespace aiayn {

int64_t expected_parameter_count(const ModelConfig& c) {
  const int64_t d = c.d_model;
  const int64_t qkv = c.heads * (2 * c.d_k + c.d_v);
  const int64_t attention = d * qkv + qkv + c.heads * c.d_v * d + d;  // W^Q,K,V and W^O, biases
  const int64_t ffn = d * c.d_ff + c.d_ff + c.d_ff * d + d;
  const int64_t norm = 2 * d;
  const int64_t encoder_layer = attention + ffn + 2 * norm;
  const int64_t decoder_layer = 2 * attention + ffn + 3 * norm;
  int64_t n = c.encoder_layers * encoder_layer + c.decoder_layers * decoder_layer;
  if (c.norm_first) n += 2 * norm;                // final LayerNorm of each stack
  n += c.src_vocab * d;                           // source embedding
  if (!c.share_embeddings) n += c.tgt_vocab * d;  // target embedding
  if (!c.tie_output) n += c.tgt_vocab * d;        // pre-softmax projection
  if (c.positional == Positional::learned) n += 2 * c.max_positions * d;
  return n;
}

}  // namespace aiayn
