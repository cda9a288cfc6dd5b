// Subword regularisation by BPE-dropout (Provilkov et al., 2020): each time a
// training pair is used, its BPE segmentation is drawn afresh by merging its
// words' characters again in the model's merge order while skipping each
// merge with probability p (p = 0 gives back SentencePiece's own segmentation).
// It works on cached ids, not on text: a word's deterministic pieces spell
// its normalised characters, so the cache stays the only copy of the corpus.
// The draw is a function of (seed, epoch, pair, side), so that resume is
// exact and the batches' order or threading cannot change it.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/data/tokenizer.h"

namespace aiayn {

class BpeDropout {
 public:
  explicit BpeDropout(const Tokenizer& tokenizer);

  // Re-segments `ids` (a deterministic encoding, no bos/eos) into `out`.
  // Words holding an unknown piece, or a character that is no piece, keep
  // their pieces.
  void resample(const int64_t* ids, int64_t n, double p, uint64_t seed, std::vector<int64_t>* out) const;
  // The seed of one side of one pair in one epoch.
  static uint64_t seed_for(uint64_t seed, int64_t epoch, int64_t pair, int side);

 private:
  struct Piece {
    int32_t id;
    float score;
  };
  void merge_word(const std::string& word, double p, uint64_t* state, std::vector<int64_t>* out) const;

  std::unordered_map<std::string, Piece> pieces_;  // ordinary pieces by text
  std::vector<std::string> text_;                  // id -> piece text
  std::vector<char> starts_word_;                  // id -> begins with U+2581
  std::vector<char> normal_;                       // id -> an ordinary piece
};

}  // namespace aiayn
