#include "src/decode/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "src/common/hash.h"

namespace aiayn {

double sampling_uniform(uint64_t seed, int64_t line, int64_t sample, int64_t step) {
  const int64_t key[4] = {static_cast<int64_t>(seed), line, sample, step};
  // The top 53 bits: every double in [0, 1) that step can hit, none equal to 1.
  return static_cast<double>(hash_bytes(key, sizeof key) >> 11) * 0x1.0p-53;
}

int64_t draw_token(const float* lprobs, int64_t vocab, const SamplingOptions& o, double u,
                   std::vector<int64_t>* scratch) {
  auto& ids = *scratch;
  ids.clear();
  for (int64_t v = 0; v < vocab; ++v) {
    if (std::isfinite(lprobs[v])) ids.push_back(v);
  }
  if (ids.empty()) return 0;
  auto likelier = [&](int64_t a, int64_t b) {
    return lprobs[a] > lprobs[b] || (lprobs[a] == lprobs[b] && a < b);
  };
  if (o.temperature == 0) return *std::min_element(ids.begin(), ids.end(), likelier);
  // Top-k keeps the k likeliest; top-p then needs them in order.
  if (o.top_k > 0 && o.top_k < static_cast<int64_t>(ids.size())) {
    std::partial_sort(ids.begin(), ids.begin() + o.top_k, ids.end(), likelier);
    ids.resize(static_cast<size_t>(o.top_k));
  } else if (o.top_p < 1) {
    std::sort(ids.begin(), ids.end(), likelier);
  }
  // Probabilities at the temperature, relative to the likeliest kept token.
  double top = -INFINITY;
  for (int64_t v : ids) top = std::max(top, static_cast<double>(lprobs[v]));
  std::vector<double> weight(ids.size());
  double total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    weight[i] = std::exp((static_cast<double>(lprobs[ids[i]]) - top) / o.temperature);
    total += weight[i];
  }
  if (o.top_p < 1) {
    // The smallest prefix (likeliest first) whose share reaches top_p.
    double kept = 0;
    size_t n = 0;
    while (n < ids.size() && kept < o.top_p * total) kept += weight[n++];
    weight.resize(n);
    ids.resize(n);
    total = kept;
  }
  const double target = u * total;
  double cumulative = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cumulative += weight[i];
    if (target < cumulative) return ids[i];
  }
  return ids.back();  // rounding left `target` at the very end
}

}  // namespace aiayn
