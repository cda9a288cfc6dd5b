// The model's hyper-parameters (paper Table 3). Reading and writing them as
// JSON is src/common/model_config_json.h's: models/ depends on LibTorch alone.
#pragma once
#include <cstdint>
#include <string>

namespace aiayn {

// Fixed special ids of every vocabulary the toolkit trains (docs/design.md).
constexpr int64_t kPadId = 0;
constexpr int64_t kUnkId = 1;
constexpr int64_t kBosId = 2;
constexpr int64_t kEosId = 3;

// How positions enter the embeddings (section 3.5; Table 3 row E).
enum class Positional { sinusoidal, learned };
inline const char* to_string(Positional p) { return p == Positional::learned ? "learned" : "sinusoidal"; }

struct ModelConfig {
  int64_t encoder_layers = 6;  // N (Table 3)
  int64_t decoder_layers = 6;  // N
  int64_t d_model = 512;
  int64_t d_ff = 2048;
  int64_t heads = 8;                // h
  int64_t d_k = 64;                 // d_model / h unless set (Table 3 rows A, B)
  int64_t d_v = 64;                 // d_model / h unless set (row A)
  double p_drop = 0.1;              // residual dropout, section 5.4
  double attention_dropout = 0.0;   // on attention weights (not in the paper)
  double activation_dropout = 0.0;  // after the FFN's ReLU (not in the paper)
  Positional positional = Positional::sinusoidal;
  int64_t max_positions = 1024;  // longest sequence, in tokens
  bool norm_first = false;       // false: LayerNorm(x + Sublayer(x)) as section 3.1
  double layer_norm_eps = 1e-5;
  // Weight tying, section 3.4: source = target embedding (needs one joint
  // vocabulary), and target embedding = pre-softmax projection.
  bool share_embeddings = true;
  bool tie_output = true;
  // Vocabulary sizes: 0 in a config file means "from the tokenizer".
  int64_t src_vocab = 0;
  int64_t tgt_vocab = 0;
};

// Closed-form parameter count of the architecture (for tests and summaries).
int64_t expected_parameter_count(const ModelConfig& c);

}  // namespace aiayn
