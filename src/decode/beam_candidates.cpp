#include "src/decode/beam_candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/vector_math.h"

namespace aiayn {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A row's max and log(sum exp(x - max)): log_softmax(x)[t] = (x[t] - max) - log_sum,
// the order of operations LibTorch's log_softmax uses.
// Its own AVX-512 clone beside vector_math's AVX2 one: over a 10k vocabulary
// this exp pass was an eighth of an int8 beam search.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void row_normalizer(const float* x, int64_t n, float* max, float* log_sum) {
  *max = vec::max(x, n);
  *log_sum = std::log(vec::sum_exp(x, n, *max));
}

struct Entry {
  float value;
  int64_t index;  // beam * vocab + token: the tie-break, lower first
};

// Heap order: the worst entry on top (lowest value; among equals, the higher index).
bool worse_on_top(const Entry& a, const Entry& b) {
  return a.value != b.value ? a.value > b.value : a.index < b.index;
}

// The best `width` entries of a sentence, kept as a heap with the worst on top.
class Best {
 public:
  explicit Best(int64_t width) : width_(static_cast<size_t>(width)) { heap_.reserve(width_ + 1); }
  bool full() const { return heap_.size() == width_; }
  float worst() const { return heap_.front().value; }
  // Scanned in increasing index, so an equal value never displaces an earlier one.
  void offer(float value, int64_t index) {
    if (full() && !(value > heap_.front().value)) return;
    heap_.push_back({value, index});
    std::push_heap(heap_.begin(), heap_.end(), worse_on_top);
    if (heap_.size() > width_) {
      std::pop_heap(heap_.begin(), heap_.end(), worse_on_top);
      heap_.pop_back();
    }
  }
  std::vector<Candidate> ranked(int64_t vocab) {
    std::sort_heap(heap_.begin(), heap_.end(), worse_on_top);  // best first
    std::vector<Candidate> out;
    out.reserve(heap_.size());
    for (const auto& e : heap_)
      out.push_back({e.index / vocab, e.index % vocab, static_cast<double>(e.value)});
    return out;
  }

 private:
  size_t width_;
  std::vector<Entry> heap_;
};

// One row's extensions into `best`. A logit can only enter once it beats the
// cut, which the heap's worst sets; the cut is loosened by a margin larger
// than float rounding, and each logit past it is scored exactly.
void scan_row(const float* x, int64_t vocab, float score, float max, float log_sum, int64_t base,
              const std::vector<char>& skip, Best& best) {
  float cut = kNegInf;
  for (int64_t t = 0; t < vocab; ++t) {
    if (x[t] <= cut || skip[static_cast<size_t>(t)]) continue;
    const float value = score + ((x[t] - max) - log_sum);
    best.offer(value, base + t);
    if (best.full()) {
      const float bound = (best.worst() - score) + log_sum + max;
      cut = bound - (1e-3f + 1e-5f * std::fabs(bound));
    }
  }
}

}  // namespace

std::vector<std::vector<Candidate>> rank_from_logits(const float* logits, const float* beam_scores,
                                                     int64_t sentences, int64_t beam, int64_t vocab,
                                                     const std::vector<EndRule>& rules, int64_t eos,
                                                     const std::vector<int64_t>& banned, int64_t width) {
  std::vector<char> skip(static_cast<size_t>(vocab), 0), skip_eos;
  for (int64_t t : banned) skip[static_cast<size_t>(t)] = 1;
  skip_eos = skip;
  skip_eos[static_cast<size_t>(eos)] = 1;
  std::vector<std::vector<Candidate>> out(static_cast<size_t>(sentences));
  for (int64_t s = 0; s < sentences; ++s) {
    Best best(width);
    const EndRule rule = rules[static_cast<size_t>(s)];
    for (int64_t b = 0; b < beam; ++b) {
      const int64_t row = s * beam + b;
      const float score = beam_scores[row];
      if (!std::isfinite(score)) continue;  // an empty slot (the first step's K-1 copies)
      const float* x = logits + row * vocab;
      float max = 0, log_sum = 0;
      row_normalizer(x, vocab, &max, &log_sum);
      if (rule == EndRule::only_eos) {
        best.offer(score + ((x[eos] - max) - log_sum), b * vocab + eos);
      } else {
        scan_row(x, vocab, score, max, log_sum, b * vocab, rule == EndRule::no_eos ? skip_eos : skip, best);
      }
    }
    out[static_cast<size_t>(s)] = best.ranked(vocab);
  }
  return out;
}

}  // namespace aiayn
