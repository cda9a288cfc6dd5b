// Attention maps as JSON (the attention tool): per sentence, the weights every
// attention head really used, in bertviz's encoder-decoder vocabulary.
// Format: docs/attention-format.md.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/data/tokenizer.h"
#include "src/decode/alignment.h"
#include "src/decode/search.h"

namespace aiayn {

constexpr int kAttentionFormatVersion = 1;

struct AttentionExportOptions {
  bool encoder = true, decoder = true, cross = true;  // which kinds to write
  std::vector<int64_t> layers;                        // empty = all
  std::vector<int64_t> heads;                         // empty = all
  bool average_heads = false;                         // one map per layer: the mean over the chosen heads
  int decimals = 4;                                   // rounding of the weights
  SearchOptions search = greedy();                    // for sentences without a given target
  AlignmentOptions alignment;                         // the "alignment" field (src/decode/alignment.h)

  static SearchOptions greedy() {
    SearchOptions o;
    o.beam = 1;
    return o;
  }
};

// Checks layer and head indices against the model; throws InputError naming
// the option and the valid range.
void validate_attention_options(const AttentionExportOptions& options, const ModelConfig& model);

// Writes one JSON object per line for each source line (targets optional:
// empty vector = translate first). Lines are processed in groups and
// flushed, so the output streams and memory stays bounded.
class AttentionExporter {
 public:
  AttentionExporter(Transformer model, TokenizerPair tokenizers, AttentionExportOptions options);
  // Writes the entries of these lines; `first_index` is the 0-based index of
  // sources[0] in the whole input.
  // Warnings name source_name / target_name and the line.
  void write(const std::vector<std::string>& sources, const std::vector<std::string>* targets,
             int64_t first_index, std::ostream& out, const std::function<void(const std::string&)>& warn = {},
             const std::string& source_name = "source", const std::string& target_name = "target",
             const std::vector<GoldAlignment>* gold = nullptr);
  // The same entries as JSON objects (aiayn-attention --serve answers with one).
  std::vector<nlohmann::json> entries(const std::vector<std::string>& sources,
                                      const std::vector<std::string>* targets, int64_t first_index,
                                      const std::function<void(const std::string&)>& warn = {},
                                      const std::string& source_name = "source",
                                      const std::string& target_name = "target",
                                      const std::vector<GoldAlignment>* gold = nullptr);
  // With gold alignments given to write(): the AER of every decoder
  // layer's encoder-decoder attention, each head and the heads' mean, over
  // the sentences written so far; one line per layer.
  std::string aer_table() const;

 private:
  // The chosen layers of one kind (all of that stack's layers by default).
  std::vector<int64_t> layer_ids(int64_t stack_layers) const;
  nlohmann::json maps_json(const std::vector<torch::Tensor>& per_layer) const;

  Transformer model_;
  TokenizerPair tokenizers_;
  AttentionExportOptions options_;
  std::map<std::pair<int64_t, int64_t>, AerCounts> aer_;  // (layer, head or -1 = mean)
};

}  // namespace aiayn
