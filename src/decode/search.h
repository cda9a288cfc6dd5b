// Decoding: greedy search and beam search (section 6.1: beam 4, length
// penalty alpha 0.6, maximum output length |x| + 50), both incremental: each
// step feeds one token per hypothesis through the cached decoder state.
// The loops run on a StepModel (src/decode/step_model.h); the beam rule they apply
// is src/decode/beam_rule.h.
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

#include "models/transformer.h"
#include "src/decode/search_options.h"
#include "src/decode/step_model.h"

namespace aiayn {

using Hypotheses = std::vector<std::vector<Hypothesis>>;  // per sentence, best first

// The seam: search on any step model (src/decode/step_model.h: one model,
// an ensemble, a scripted one in tests), for sentences of `source_lengths`
// tokens (without eos; they set each sentence's length limit) -> for each
// sentence, up to nbest hypotheses, best first. The step model starts with
// one row per sentence for greedy and `beam` rows for beam search. search()
// validates the options and runs greedy for beam 1, else beam search.
Hypotheses search(StepModel& model, const std::vector<int64_t>& source_lengths, const SearchOptions& options);
Hypotheses greedy_search(StepModel& model, const std::vector<int64_t>& source_lengths,
                         const SearchOptions& options);
Hypotheses beam_search(StepModel& model, const std::vector<int64_t>& source_lengths,
                       const SearchOptions& options);

// One model's shortcut: src [B, S] (tokens + eos, right-padded with kPadId)
// through a TransformerStepModel into search(). The model must be in eval mode.
Hypotheses search(TransformerImpl& model, const torch::Tensor& src, const SearchOptions& options);

// Sampling (options.sampling): one output per row of the step model, each
// drawn from the model's distribution (src/decode/sampling.h); `draws`
// gives each row's (input line, sample number), which alone seed its draws.
// Hypotheses hold the model's own log-probabilities (temperature 1, no
// filtering), so that samples are scored as beam outputs are.
Hypotheses sample_search(StepModel& model, const std::vector<int64_t>& source_lengths,
                         const std::vector<std::pair<int64_t, int64_t>>& draws, const SearchOptions& options);

// The source format search takes: rows of ids (without eos) -> [B, S] ids +
// eos, right-padded with kPadId, S = the longest row + 1. On the CPU.
torch::Tensor source_batch(const std::vector<const std::vector<int64_t>*>& rows);

// Source lengths without eos of src [B, S].
std::vector<int64_t> source_lengths(const torch::Tensor& src);

// Log-probability of each target under forced decoding: src [B, S],
// targets: token lists without bos/eos (eos is scored too) -> [B] sums. One
// pass of the whole decoder, without the cache: the tests' oracle for the
// scores of search and of the step model below.
std::vector<double> forced_log_probs(TransformerImpl& model, const torch::Tensor& src,
                                     const std::vector<std::vector<int64_t>>& targets);

// The same on any step model (an ensemble), one row per target, stepping
// through the targets with the decoder's cache: [B] sums.
std::vector<double> forced_log_probs(StepModel& model, const std::vector<std::vector<int64_t>>& targets);

}  // namespace aiayn
