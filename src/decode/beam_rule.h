// The beam rule apart from the decoding loop (section 6.1: beam search with
// a length penalty): which extensions of a sentence's K beams end, which go
// on, and when the sentence is done. Pure functions on plain values, so they
// are tested without a model (tests/test_search.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "src/decode/search_options.h"

namespace aiayn {

// One extension of a beam by one token, with the extended beam's summed
// log-probability.
struct Candidate {
  int64_t beam = 0;  // the beam it extends, 0..K-1 within its sentence
  int64_t token = 0;
  double log_prob = 0;
};

// What the rule makes of one sentence's ranked extensions at one step.
struct BeamStep {
  std::vector<Candidate> ended;  // extensions by eos: they become hypotheses
  std::vector<Candidate> live;   // at most K others, best first: the next beams
};

// ranked: a sentence's best extensions (2K of them, so that K non-eos ones
// remain even when eos ranks high), best first. Eos counts only among the
// top K, as in fairseq; a non-finite log-probability ends the list. Live
// log-probabilities are rounded to float, the precision the loop keeps.
BeamStep split_candidates(const std::vector<Candidate>& ranked, int64_t beam, int64_t eos_id);

// The hypothesis that ends a beam of `tokens` (without bos and eos) with a
// summed log-probability `log_prob` (eos included), scored under alpha.
Hypothesis ended_hypothesis(std::vector<int64_t> tokens, double log_prob, double alpha);

// Whether a sentence is done at step `step` (1 = the first token), given its
// finished hypotheses sorted best first and this step's live extensions,
// best first; `longest` is its output length limit.
bool sentence_done(const std::vector<Hypothesis>& finished, const std::vector<Candidate>& live, int64_t step,
                   int64_t longest, const SearchOptions& options);

// Sorts a sentence's finished hypotheses best first.
void rank_finished(std::vector<Hypothesis>& finished);

// Repeats the last live extension, with log-probability -inf, until there are
// K: only a vocabulary smaller than 2K leaves fewer.
void fill_beams(std::vector<Candidate>& live, int64_t beam);

}  // namespace aiayn
