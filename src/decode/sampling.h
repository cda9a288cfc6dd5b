// One draw of sampling (src/decode/search_options.h: SamplingOptions): the
// next token from a row of log-probabilities, as pure functions on plain
// values so that their properties are tested without a model.
#pragma once
#include <cstdint>
#include <vector>

#include "src/decode/search_options.h"

namespace aiayn {

// A uniform number in [0, 1) for the draw at `step` of sample `sample` of
// input line `line`: a hash of the four, nothing else.
double sampling_uniform(uint64_t seed, int64_t line, int64_t sample, int64_t step);

// The token that `u` in [0, 1) picks from lprobs[0..vocab) (log-probabilities;
// -inf entries are never picked) after temperature, top-k and top-p.
// Temperature 0 picks the likeliest token (the lowest id among equals), as
// greedy search does. `scratch` is reused between calls.
int64_t draw_token(const float* lprobs, int64_t vocab, const SamplingOptions& options, double u,
                   std::vector<int64_t>* scratch);

}  // namespace aiayn
