// A beam step's ranking in one pass over the raw logits (CPU): for each row
// its log-sum-exp, then each sentence's best extensions by summed
// log-probability, kept in a small heap. It replaces a log-softmax over the
// vocabulary, a [n, K, V] score sum and a top-k, which took a third of a
// beam-4 decode of a `small` model (perf, docs/benchmarks.md). The
// device-generic path beside it is search.cpp's rank_extensions on
// log-probabilities; both rank the same values, float for float up to the
// exp's rounding.
#pragma once
#include <cstdint>
#include <vector>

#include "src/decode/beam_rule.h"

namespace aiayn {

// How a sentence may end at this step.
enum class EndRule {
  free,      // any token
  no_eos,    // not yet: its first step, where an empty output is barred
  only_eos,  // now: it reached its length limit
};

// logits: [sentences * beam, vocab] row-major, fp32; beam_scores:
// [sentences * beam] summed log-probabilities (-inf: no beam in that slot).
// Returns each sentence's best `width` extensions, best first (ties: lower
// beam, then lower token), each scored beam_score + log_softmax(row)[token];
// `banned` tokens are never extensions (they still count in the softmax).
std::vector<std::vector<Candidate>> rank_from_logits(const float* logits, const float* beam_scores,
                                                     int64_t sentences, int64_t beam, int64_t vocab,
                                                     const std::vector<EndRule>& rules, int64_t eos,
                                                     const std::vector<int64_t>& banned, int64_t width);

}  // namespace aiayn
