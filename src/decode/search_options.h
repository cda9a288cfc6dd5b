// What search is asked to do and what it returns, without LibTorch: the
// beam rule (src/decode/beam_rule.h) and its tests need only these.
#pragma once
#include <cstdint>
#include <vector>

namespace aiayn {

// Sampling instead of search (back-translation, Edunov et al. 2018): each
// output drawn token by token from the model's distribution at
// `temperature`, restricted to the top_k likeliest tokens (0 = all) and then
// to the smallest set whose probability reaches top_p (1 = all). Every draw
// is seeded by (seed, input line, sample, step) alone, so the outputs do not
// depend on batching, threads or workers. Temperature 0 is greedy.
struct SamplingOptions {
  bool enabled = false;
  int64_t top_k = 0;
  double top_p = 1.0;
  double temperature = 1.0;
  uint64_t seed = 1;
};

struct SearchOptions {
  int64_t beam = 4;             // 1 = greedy
  double length_penalty = 0.6;  // alpha of GNMT's ((5 + |Y|) / 6)^alpha; 0 = none
  double max_len_a = 1.0;       // outputs stop at a * |x| + b tokens (eos excluded)
  int64_t max_len_b = 50;
  int64_t nbest = 1;         // hypotheses returned per sentence (<= beam)
  bool use_cache = true;     // false: recompute the whole prefix each step (for comparison)
  SamplingOptions sampling;  // enabled: nbest samples per sentence instead of a beam

  // The one check of these options: OptionError (src/common/error.h) keyed
  // by the option out of range (beam, nbest, alpha, max-len-a, max-len-b,
  // sampling-topk, sampling-topp, temperature); search() calls it.
  void validate() const;
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without bos and eos
  double log_prob = 0;          // sum of log p over tokens and eos
  double score = 0;             // log_prob / length penalty: what search ranks by
};

// GNMT's length penalty ((5 + length) / 6)^alpha (section 6.1 follows GNMT).
double length_penalty(int64_t length, double alpha);

// Output length limit for a source of `source_length` tokens (without eos),
// under a decoder of `max_positions` positions.
int64_t max_output_length(const SearchOptions& options, int64_t source_length, int64_t max_positions);

}  // namespace aiayn
