// Text in, text out: tokenization, length-sorted batches, search, and
// detokenization, with outputs in input order and one output per input line.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/data/tokenizer.h"
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
};

struct Translation {
  std::vector<Hypothesis> hypotheses;  // best first; empty for an empty or skipped line
  std::vector<std::string> texts;      // detokenized, one per hypothesis
};

class Translator {
 public:
  Translator(Transformer model, Tokenizer tokenizer, torch::Device device);
  // Separate vocabularies: the source side encoded, the target side decoded.
  Translator(Transformer model, TokenizerPair tokenizers, torch::Device device);

  // Translates `lines`; `first_line` numbers them in warnings (file line of
  // lines[0]). Invalid UTF-8 gives an empty translation and a warning; a line
  // longer than the model's positions is truncated with a warning.
  std::vector<Translation> translate(const std::vector<std::string>& lines,
                                     const TranslateOptions& options, int64_t first_line = 1,
                                     const std::function<void(const std::string&)>& warn = {});

  // The target side's (which renders outputs as pieces or ids).
  const Tokenizer& tokenizer() const { return tokenizers_.target; }
  TransformerImpl& model() { return *model_; }

 private:
  Transformer model_;
  TokenizerPair tokenizers_;
  torch::Device device_;
};

}  // namespace aiayn
