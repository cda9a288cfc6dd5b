#include "models/config.h"

#include "src/error.h"
#include "src/json_reader.h"

namespace aiayn {

ModelConfig ModelConfig::from_json(JsonObjectReader& r) {
  ModelConfig c;
  constexpr int64_t kBig = int64_t{1} << 20;
  c.encoder_layers = r.integer("encoder_layers", c.encoder_layers, 1, 1024);
  c.decoder_layers = r.integer("decoder_layers", c.decoder_layers, 1, 1024);
  c.d_model = r.integer("d_model", c.d_model, 1, kBig);
  c.d_ff = r.integer("d_ff", c.d_ff, 1, kBig);
  c.heads = r.integer("heads", c.heads, 1, 1024);
  if (c.d_model % c.heads != 0) {
    r.fail("heads", "d_model " + std::to_string(c.d_model) + " is not divisible by heads " +
                        std::to_string(c.heads));
  }
  c.d_k = r.integer("d_k", c.d_model / c.heads, 1, kBig);
  c.d_v = r.integer("d_v", c.d_model / c.heads, 1, kBig);
  c.p_drop = r.number("p_drop", c.p_drop, 0.0, 1.0, true);
  c.attention_dropout = r.number("attention_dropout", c.attention_dropout, 0.0, 1.0, true);
  c.activation_dropout = r.number("activation_dropout", c.activation_dropout, 0.0, 1.0, true);
  c.positional = r.choice("positional", c.positional, {"sinusoidal", "learned"});
  c.max_positions = r.integer("max_positions", c.max_positions, 2, kBig);
  c.norm_first = r.boolean("norm_first", c.norm_first);
  c.layer_norm_eps = r.number("layer_norm_eps", c.layer_norm_eps, 1e-12, 1.0);
  c.share_embeddings = r.boolean("share_embeddings", c.share_embeddings);
  c.tie_output = r.boolean("tie_output", c.tie_output);
  c.src_vocab = r.integer("src_vocab", 0, 0, int64_t{1} << 31);
  c.tgt_vocab = r.integer("tgt_vocab", 0, 0, int64_t{1} << 31);
  r.reject_unknown();
  if (c.share_embeddings && c.src_vocab != c.tgt_vocab) {
    r.fail("share_embeddings", "needs one joint vocabulary, but src_vocab " +
                                   std::to_string(c.src_vocab) + " != tgt_vocab " +
                                   std::to_string(c.tgt_vocab));
  }
  return c;
}

nlohmann::json ModelConfig::to_json() const {
  return {
      {"encoder_layers", encoder_layers},
      {"decoder_layers", decoder_layers},
      {"d_model", d_model},
      {"d_ff", d_ff},
      {"heads", heads},
      {"d_k", d_k},
      {"d_v", d_v},
      {"p_drop", p_drop},
      {"attention_dropout", attention_dropout},
      {"activation_dropout", activation_dropout},
      {"positional", positional},
      {"max_positions", max_positions},
      {"norm_first", norm_first},
      {"layer_norm_eps", layer_norm_eps},
      {"share_embeddings", share_embeddings},
      {"tie_output", tie_output},
      {"src_vocab", src_vocab},
      {"tgt_vocab", tgt_vocab},
  };
}

void ModelConfig::validate(const std::string& origin) const {
  // Round-tripping through the reader applies exactly the same rules.
  nlohmann::json j = to_json();
  JsonObjectReader r(j, origin, "model");
  from_json(r);
}

void ModelConfig::require_vocab(const std::string& origin) const {
  if (src_vocab <= 0 || tgt_vocab <= 0) {
    throw InputError(origin + ": model.src_vocab and model.tgt_vocab must be set (got " +
                     std::to_string(src_vocab) + ", " + std::to_string(tgt_vocab) +
                     "): they come from the tokenizer, or --vocab");
  }
}

ModelConfig load_model_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  JsonObjectReader top(j, path, "");
  if (!top.has("model")) throw InputError(path + ": missing key \"model\"");
  JsonObjectReader model = top.object("model");
  return ModelConfig::from_json(model);
}

int64_t expected_parameter_count(const ModelConfig& c) {
  const int64_t d = c.d_model;
  const int64_t qkv = c.heads * (2 * c.d_k + c.d_v);
  const int64_t attention = d * qkv + qkv + c.heads * c.d_v * d + d;  // W^Q,K,V and W^O, biases
  const int64_t ffn = d * c.d_ff + c.d_ff + c.d_ff * d + d;
  const int64_t norm = 2 * d;
  const int64_t encoder_layer = attention + ffn + 2 * norm;
  const int64_t decoder_layer = 2 * attention + ffn + 3 * norm;
  int64_t n = c.encoder_layers * encoder_layer + c.decoder_layers * decoder_layer;
  if (c.norm_first) n += 2 * norm;  // final LayerNorm of each stack
  n += c.src_vocab * d;                                  // source embedding
  if (!c.share_embeddings) n += c.tgt_vocab * d;         // target embedding
  if (!c.tie_output) n += c.tgt_vocab * d;               // pre-softmax projection
  if (c.positional == "learned") n += 2 * c.max_positions * d;
  return n;
}

}  // namespace aiayn
