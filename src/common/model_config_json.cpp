#include "src/common/model_config_json.h"

#include "src/common/error.h"

namespace aiayn {

ModelConfig read_model_config(JsonObjectReader& r) {
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

nlohmann::json model_config_to_json(const ModelConfig& c) {
  return {
      {"encoder_layers", c.encoder_layers},
      {"decoder_layers", c.decoder_layers},
      {"d_model", c.d_model},
      {"d_ff", c.d_ff},
      {"heads", c.heads},
      {"d_k", c.d_k},
      {"d_v", c.d_v},
      {"p_drop", c.p_drop},
      {"attention_dropout", c.attention_dropout},
      {"activation_dropout", c.activation_dropout},
      {"positional", c.positional},
      {"max_positions", c.max_positions},
      {"norm_first", c.norm_first},
      {"layer_norm_eps", c.layer_norm_eps},
      {"share_embeddings", c.share_embeddings},
      {"tie_output", c.tie_output},
      {"src_vocab", c.src_vocab},
      {"tgt_vocab", c.tgt_vocab},
  };
}

void validate_model_config(const ModelConfig& c, const std::string& origin) {
  // Round-tripping through the reader applies exactly the same rules.
  nlohmann::json j = model_config_to_json(c);
  JsonObjectReader r(j, origin, "model");
  read_model_config(r);
}

void require_vocab(const ModelConfig& c, const std::string& origin) {
  if (c.src_vocab <= 0 || c.tgt_vocab <= 0) {
    throw InputError(origin + ": model.src_vocab and model.tgt_vocab must be set (got " +
                     std::to_string(c.src_vocab) + ", " + std::to_string(c.tgt_vocab) +
                     "): they come from the tokenizer, or --vocab");
  }
}

ModelConfig load_model_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  JsonObjectReader top(j, path, "");
  if (!top.has("model")) throw InputError(path + ": missing key \"model\"");
  JsonObjectReader model = top.object("model");
  return read_model_config(model);
}

}  // namespace aiayn
