#include "src/decode/beam_rule.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace aiayn {

BeamStep split_candidates(const std::vector<Candidate>& ranked, int64_t beam, int64_t eos_id) {
  BeamStep out;
  for (size_t j = 0; j < ranked.size() && static_cast<int64_t>(out.live.size()) < beam; ++j) {
    const auto& c = ranked[j];
    if (!std::isfinite(c.log_prob)) break;
    if (c.token == eos_id) {
      if (static_cast<int64_t>(j) < beam) out.ended.push_back(c);
      continue;
    }
    Candidate live = c;
    live.log_prob = static_cast<float>(c.log_prob);
    out.live.push_back(live);
  }
  return out;
}

Hypothesis ended_hypothesis(std::vector<int64_t> tokens, double log_prob, double alpha) {
  Hypothesis h;
  h.tokens = std::move(tokens);
  h.log_prob = log_prob;
  h.score = log_prob / length_penalty(static_cast<int64_t>(h.tokens.size()) + 1, alpha);
  return h;
}

bool sentence_done(const std::vector<Hypothesis>& finished, const std::vector<Candidate>& live, int64_t step,
                   int64_t longest, const SearchOptions& o) {
  if (live.empty()) return true;
  if (static_cast<int64_t>(finished.size()) < o.nbest) return false;
  // No live beam can beat the nbest-th finished one: log-probs only fall, so
  // a live beam's best possible score is its log-prob now over the penalty
  // of the longest length.
  const double bound = live[0].log_prob / length_penalty(longest + 1, o.length_penalty);
  if (finished[static_cast<size_t>(o.nbest - 1)].score >= bound) return true;
  // Or, once K have finished (where fairseq stops), the best finished one
  // also beats the best live beam as it stands, at this step's length (so
  // beam 1 stops at the first eos, as greedy does). Stopping at K finished
  // alone returned truncated outputs: a confident model ranks eos among the
  // top K step after step with scores far below its best beam ("2030-").
  return static_cast<int64_t>(finished.size()) >= o.beam &&
         finished[0].score >= live[0].log_prob / length_penalty(step, o.length_penalty);
}

void rank_finished(std::vector<Hypothesis>& finished) {
  std::sort(finished.begin(), finished.end(),
            [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
}

void fill_beams(std::vector<Candidate>& live, int64_t beam) {
  while (static_cast<int64_t>(live.size()) < beam) {
    Candidate c = live.back();
    c.log_prob = -std::numeric_limits<double>::infinity();
    live.push_back(c);
  }
}

}  // namespace aiayn
