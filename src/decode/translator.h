// Text in, text out: tokenization, length-sorted batches, search, and
// detokenization, with outputs in input order and one output per input line.
// One model or an ensemble (src/decode/ensemble.h); beam search, greedy or
// sampling; target prefixes forced (src/decode/forced_prefix.h); and forced
// scoring of given targets.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/common/precision.h"
#include "src/data/tokenizer.h"
#include "src/decode/alignment.h"
#include "src/decode/search.h"

namespace aiayn {

struct TranslateOptions {
  SearchOptions search;
  int64_t batch_sentences = 64;  // at most this many sentences per batch
  int64_t batch_tokens = 4096;   // and at most this many source tokens (padded shape)
  // Batches decoded at once, each by its own thread (as CTranslate2's
  // inter_threads). With several, each worker should run single-threaded
  // (set_threads(1)): on small decoding matrices that beats splitting each
  // matrix product across cores.
  int64_t workers = 1;
  // Word alignments of every output from encoder-decoder attention
  // (src/decode/alignment.h), in Translation::alignments.
  bool alignment = false;
  AlignmentOptions alignment_options;
  // The matrix products in bf16 or fp16 (src/common/precision.h); the
  // log-probabilities stay fp32.
  Precision precision = Precision::fp32;
};

struct Translation {
  std::vector<Hypothesis> hypotheses;   // best first; empty for an empty or skipped line
  std::vector<std::string> texts;       // detokenized, one per hypothesis
  std::vector<std::string> alignments;  // with options.alignment: Pharaoh links, one per hypothesis
};

using Warn = std::function<void(const std::string&)>;

class Translator {
 public:
  Translator(Transformer model, Tokenizer tokenizer, torch::Device device);
  // Separate vocabularies: the source side encoded, the target side decoded.
  Translator(Transformer model, TokenizerPair tokenizers, torch::Device device);
  // An ensemble: the models' log-probabilities averaged at every step. They
  // share `tokenizers` (the caller checks that they were trained with them).
  Translator(std::vector<Transformer> models, TokenizerPair tokenizers, torch::Device device);

  // Translates `lines`; `first_line` numbers them in warnings (file line of
  // lines[0]) and, with sampling, seeds their draws. Invalid UTF-8 gives an
  // empty translation and a warning; a line longer than the model's
  // positions is truncated with a warning. `prefixes`: null, or one target
  // prefix per line (text; "" = none) that every output of the line starts
  // with.
  std::vector<Translation> translate(const std::vector<std::string>& lines, const TranslateOptions& options,
                                     int64_t first_line = 1, const Warn& warn = {},
                                     const std::vector<std::string>* prefixes = nullptr);

  // Forced decoding: each target's log-probability given its line (eos
  // included) and its score under options.search.length_penalty, as one
  // hypothesis. An empty or invalid source line gives no hypothesis.
  std::vector<Translation> score(const std::vector<std::string>& lines,
                                 const std::vector<std::string>& targets, const TranslateOptions& options,
                                 int64_t first_line = 1, const Warn& warn = {});

  // The target side's (which renders outputs as pieces or ids).
  const Tokenizer& tokenizer() const { return tokenizers_.target; }
  // The source side's (a server counts a request's tokens with it).
  const Tokenizer& source_tokenizer() const { return tokenizers_.source; }
  const Tokenizer& target_tokenizer() const { return tokenizers_.target; }
  // The most source tokens a line may have; a longer one is truncated (with a warning).
  int64_t longest_source() const;
  // The most target tokens a forced prefix of a line with this many source
  // tokens may have; a longer one is truncated (with a warning).
  int64_t longest_prefix(const SearchOptions& search, int64_t source_tokens) const;

 private:
  struct Plan;
  // The lines as ids, and length-sorted batches of them.
  Plan plan(const std::vector<std::string>& lines, const TranslateOptions& options, int64_t first_line,
            const Warn& warn) const;
  // Runs batch(b) for every batch, on options.workers threads.
  void for_each_batch(size_t batches, int64_t workers, const std::function<void(size_t)>& batch) const;
  // The step model for a source batch [B, S]: the model, or the ensemble.
  std::unique_ptr<StepModel> step_model(const torch::Tensor& src, bool use_cache) const;
  // Search, sampling or forced prefixes on one batch; lines: each row's
  // index in the input (0-based, for prefixes and sampling's seeds).
  Hypotheses decode(const torch::Tensor& src, const std::vector<int64_t>& lines, int64_t first_line,
                    const std::vector<std::vector<int64_t>>* prefixes, const SearchOptions& options) const;
  void detokenize(std::vector<Translation>& out) const;
  // Alignments of every hypothesis, from the first model's attention.
  void align(const Plan& plan, const AlignmentOptions& options, std::vector<Translation>& out) const;

  std::vector<Transformer> models_;
  TokenizerPair tokenizers_;
  torch::Device device_;
};

}  // namespace aiayn
