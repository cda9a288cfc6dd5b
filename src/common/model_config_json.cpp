#include "src/common/model_config_json.h"

#include "src/common/error.h"
#include "src/common/option_table.h"

namespace aiayn {

namespace {

constexpr int64_t kBig = int64_t{1} << 20;

OptionTable<ModelConfig> make_model_table() {
  using C = ModelConfig;
  OptionTable<C> t("model");
  t.integer("encoder_layers", &C::encoder_layers, 1, 1024, "N, layers of the encoder stack (section 3.1)")
      .integer("decoder_layers", &C::decoder_layers, 1, 1024, "N, layers of the decoder stack")
      .integer("d_model", &C::d_model, 1, kBig, "width of every sub-layer's output and the embeddings")
      .integer("d_ff", &C::d_ff, 1, kBig, "inner width of the position-wise feed-forward network (3.3)")
      .integer("heads", &C::heads, 1, 1024, "h, attention heads (3.2.2)")
      .rule([](const C& c, const OptionTable<C>::Fail& fail) {
        if (c.d_model % c.heads != 0) {
          fail("heads", "d_model " + std::to_string(c.d_model) + " is not divisible by heads " +
                            std::to_string(c.heads));
        }
      })
      .integer<int64_t>("d_k", &C::d_k, 1, kBig, "query and key width per head; absent: d_model / heads",
                        [](const C& c) { return c.d_model / c.heads; })
      .integer<int64_t>("d_v", &C::d_v, 1, kBig, "value width per head; absent: d_model / heads",
                        [](const C& c) { return c.d_model / c.heads; })
      .number("p_drop", &C::p_drop, 0.0, 1.0, "residual and embedding dropout (5.4)", true)
      .number("attention_dropout", &C::attention_dropout, 0.0, 1.0,
              "dropout on the attention weights (not in the paper)", true)
      .number("activation_dropout", &C::activation_dropout, 0.0, 1.0,
              "dropout after the feed-forward ReLU (not in the paper)", true)
      .choice("positional", &C::positional, {Positional::sinusoidal, Positional::learned},
              "positional encoding (3.5; learned is Table 3 row E)")
      .integer("max_positions", &C::max_positions, 2, kBig, "longest sequence, in tokens")
      .boolean("norm_first", &C::norm_first,
               "LayerNorm before each sub-layer (pre-LN) instead of after (3.1)")
      .number("layer_norm_eps", &C::layer_norm_eps, 1e-12, 1.0, "LayerNorm's epsilon")
      .boolean("share_embeddings", &C::share_embeddings,
               "one embedding matrix for source and target (3.4; needs a joint vocabulary)")
      .boolean("tie_output", &C::tie_output, "the target embedding is the pre-softmax projection (3.4)")
      .integer<int64_t>("src_vocab", &C::src_vocab, 0, int64_t{1} << 31,
                        "source vocabulary size; 0 = from the tokenizer", [](const C&) { return 0; })
      .integer<int64_t>("tgt_vocab", &C::tgt_vocab, 0, int64_t{1} << 31,
                        "target vocabulary size; 0 = from the tokenizer", [](const C&) { return 0; })
      .rule([](const C& c, const OptionTable<C>::Fail& fail) {
        if (c.share_embeddings && c.src_vocab != c.tgt_vocab) {
          fail("share_embeddings", "needs one joint vocabulary, but src_vocab " +
                                       std::to_string(c.src_vocab) + " != tgt_vocab " +
                                       std::to_string(c.tgt_vocab));
        }
      });
  return t;
}

}  // namespace

const OptionTable<ModelConfig>& model_options() {
  static const OptionTable<ModelConfig> table = make_model_table();
  return table;
}

ModelConfig read_model_config(JsonObjectReader& r) {
  ModelConfig c;
  model_options().read(r, c);
  return c;
}

nlohmann::json model_config_to_json(const ModelConfig& c) { return model_options().write(c); }

void validate_model_config(const ModelConfig& c, const std::string& origin) {
  model_options().validate(c, origin);
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
