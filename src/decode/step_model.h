// The decoder as search sees it: next-token log-probabilities for a set of
// rows (hypotheses) that are kept or reordered between steps. Search runs
// on this interface, so a scripted decoder can stand in for the model in
// tests, and ensembles or prefixes can wrap it.
#pragma once
#include <torch/torch.h>

#include <stdexcept>

#include "models/transformer.h"

namespace aiayn {

class StepModel {
 public:
  virtual ~StepModel() = default;
  virtual int64_t vocab() const = 0;
  // Output positions the decoder has (bos included): it bounds every length limit.
  virtual int64_t max_positions() const = 0;
  virtual torch::Device device() const = 0;
  // history: [rows, t] tokens so far, bos first -> log-probs [rows, vocab] of
  // the next token; padding and bos are -inf, so they are never produced.
  virtual torch::Tensor step(const torch::Tensor& history) = 0;
  // Whether step_logits() may stand in for step(): a model whose raw scores
  // can be normalised and ranked in one pass on the CPU (beam_candidates.h).
  // Ensembles and prefixes keep step(), which they combine or constrain.
  virtual bool has_step_logits() const { return false; }
  // history as for step() -> the next token's logits [rows, vocab], fp32 on
  // the CPU, contiguous, nothing barred yet. Only where has_step_logits().
  virtual torch::Tensor step_logits(const torch::Tensor& /*history*/) {
    throw std::logic_error("step_logits: this step model has none");
  }
  // Keeps rows `rows` (in that order) for the next step, and the sentences
  // `sentences` (undefined: every sentence stays). Before the first select,
  // row r belongs to sentence r / (rows / sentences).
  virtual void select(const torch::Tensor& rows, const torch::Tensor& sentences) = 0;
};

// The Transformer behind that interface: it encodes the sources once and
// keeps each sentence's memory once, shared by that sentence's rows, with
// the decoder's cache as an explicit state (or none: each step recomputes
// the whole prefix, to check the cache against).
class TransformerStepModel : public StepModel {
 public:
  // src: [B, S] tokens + eos, right-padded with kPadId. The model must be in eval mode.
  TransformerStepModel(TransformerImpl& model, const torch::Tensor& src, bool use_cache);
  int64_t vocab() const override;
  int64_t max_positions() const override;
  torch::Device device() const override;
  torch::Tensor step(const torch::Tensor& history) override;
  bool has_step_logits() const override;
  torch::Tensor step_logits(const torch::Tensor& history) override;
  void select(const torch::Tensor& rows, const torch::Tensor& sentences) override;

 private:
  TransformerImpl& model_;
  torch::Tensor memory_, padding_;  // [sentences, S, d_model], [sentences, S]
  bool use_cache_;
  DecoderState state_;
};

}  // namespace aiayn
