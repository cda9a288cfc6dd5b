// Decoding: greedy search and beam search (section 6.1: beam 4, length
// penalty alpha 0.6, maximum output length |x| + 50), both incremental: each
// step feeds one token per hypothesis through the cached decoder state.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "models/transformer.h"

namespace aiayn {

struct SearchOptions {
  int64_t beam = 4;             // 1 = greedy
  double length_penalty = 0.6;  // alpha of GNMT's ((5 + |Y|) / 6)^alpha; 0 = none
  double max_len_a = 1.0;       // outputs stop at a * |x| + b tokens (eos excluded)
  int64_t max_len_b = 50;
  int64_t nbest = 1;            // hypotheses returned per sentence (<= beam)
  bool use_cache = true;        // false: recompute the whole prefix each step (for comparison)

  // Throws InputError naming the translate option (--beam, --nbest, --alpha,
  // --max-len-a, --max-len-b) that is out of range; search() calls it.
  void validate() const;
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without bos and eos
  double log_prob = 0;          // sum of log p over tokens and eos
  double score = 0;             // log_prob / length penalty: what search ranks by
};

// GNMT's length penalty ((5 + length) / 6)^alpha.
double length_penalty(int64_t length, double alpha);

// Output length limit for a source of `source_length` tokens (without eos).
int64_t max_output_length(const SearchOptions& options, int64_t source_length,
                          int64_t max_positions);

// Translates a batch: src [B, S] (tokens + eos, right-padded with kPadId) ->
// for each sentence, up to nbest hypotheses, best first. Beam 1 runs the
// greedy path. The model must be in eval mode.
std::vector<std::vector<Hypothesis>> search(TransformerImpl& model, const torch::Tensor& src,
                                            const SearchOptions& options);
std::vector<std::vector<Hypothesis>> greedy_search(TransformerImpl& model,
                                                   const torch::Tensor& src,
                                                   const SearchOptions& options);
std::vector<std::vector<Hypothesis>> beam_search(TransformerImpl& model, const torch::Tensor& src,
                                                 const SearchOptions& options);

// Log-probability of each target under forced decoding: src [B, S],
// targets: token lists without bos/eos (eos is scored too) -> [B] sums.
std::vector<double> forced_log_probs(TransformerImpl& model, const torch::Tensor& src,
                                     const std::vector<std::vector<int64_t>>& targets);

}  // namespace aiayn
