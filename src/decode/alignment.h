// Word alignments from encoder-decoder attention (fairseq's
// --print-alignment; Garg et al., 2019, on which layer aligns best), in
// Pharaoh's "i-j" form (source unit i, target unit j, 0-based), and their
// alignment error rate against gold links (Och & Ney, 2003).
#pragma once
#include <torch/torch.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "models/transformer.h"

namespace aiayn {

struct AlignmentOptions {
  // Decoder layer whose encoder-decoder attention aligns; -1: the
  // penultimate (Garg et al. find it aligns best), layer 0 of a one-layer decoder.
  int64_t layer = -1;
  int64_t head = -1;  // one head, or -1: the mean of the layer's heads
  // Target units: characters (spaces excluded) instead of words, for targets
  // written without spaces, as the dates demo's ISO dates.
  bool target_characters = false;
};

// Layer in [-1, decoder layers), head in [-1, heads): InputError naming
// --alignment-layer or --alignment-head and the valid range otherwise.
void validate_alignment_options(const AlignmentOptions& options, const ModelConfig& model);

using Link = std::pair<int64_t, int64_t>;  // (source unit, target unit)

// The maps of one sentence pair under forced decoding: source ids (no eos)
// and target ids (no bos/eos). Decoder queries are the decoder input
// positions (bos + target); keys of cross attention are source + eos.
AttentionMaps capture_attention(TransformerImpl& model, const std::vector<int64_t>& source,
                                const std::vector<int64_t>& target);

// The layer options.layer names for a decoder of `layers` layers (-1 resolved).
int64_t alignment_layer(const AlignmentOptions& options, int64_t layers);

// Hard links from one encoder-decoder attention map: cross [1, h, T+1, S+1]
// (as captured: queries bos + target, keys source + eos), and the pieces of
// the source and target (without eos / bos). Pieces are merged into words at
// SentencePiece's word marker; each target unit links to the source word
// that its pieces' weights, summed over each word's pieces, favour most.
std::vector<Link> hard_alignment(const torch::Tensor& cross, const std::vector<std::string>& source_pieces,
                                 const std::vector<std::string>& target_pieces,
                                 const AlignmentOptions& options);

// "0-0 1-2 2-1", links in (target, source) order.
std::string pharaoh(const std::vector<Link>& links);

// Gold links of one sentence: "i-j" sure, "i?j" (or "ipj") possible; sure
// links are possible too. InputError naming `where` for a malformed item.
struct GoldAlignment {
  std::set<Link> sure, possible;
  std::string where;  // "file:line", for errors
};
GoldAlignment parse_gold_alignment(const std::string& line, const std::string& where);
// Refuses (InputError naming gold.where) a link outside the pair: source
// word >= source_words or target unit >= target_units. A link past the
// end would only count as missed and raise the AER without a word.
void check_gold_alignment(const GoldAlignment& gold, int64_t source_words, int64_t target_units);
// The words SentencePiece pieces make (a new one at each word marker).
int64_t count_words(const std::vector<std::string>& pieces);

// Counts over a corpus: AER = 1 - (|A & S| + |A & P|) / (|A| + |S|).
struct AerCounts {
  int64_t hits_sure = 0, hits_possible = 0, predicted = 0, sure = 0;
  void add(const std::vector<Link>& predicted_links, const GoldAlignment& gold);
  double aer() const;
};

}  // namespace aiayn
