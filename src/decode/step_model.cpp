#include "src/decode/step_model.h"

#include <limits>

#include "models/config.h"

namespace aiayn {

TransformerStepModel::TransformerStepModel(TransformerImpl& model, const torch::Tensor& src, bool use_cache)
    : model_(model), padding_(padding_mask(src, kPadId)), use_cache_(use_cache) {
  memory_ = model_.encode(src, padding_);  // [B, S, d_model]
}

int64_t TransformerStepModel::vocab() const { return model_.config().tgt_vocab; }

int64_t TransformerStepModel::max_positions() const { return model_.config().max_positions; }

torch::Device TransformerStepModel::device() const { return memory_.device(); }

torch::Tensor TransformerStepModel::step_logits(const torch::Tensor& history) {
  torch::Tensor hidden;
  if (use_cache_) {
    hidden = model_.decode(history.narrow(1, history.size(1) - 1, 1), memory_, padding_, {},
                           &state_);  // [rows, 1, d_model]
  } else {
    hidden =
        model_.decode(history, memory_, padding_).narrow(1, history.size(1) - 1, 1);  // [rows, 1, d_model]
  }
  return model_.logits(hidden.squeeze(1))
      .to(torch::kFloat32)
      .contiguous();  // [rows, V]: fp32 under autocast too
}

bool TransformerStepModel::has_step_logits() const { return memory_.device().is_cpu(); }

torch::Tensor TransformerStepModel::step(const torch::Tensor& history) {
  auto lprobs = torch::log_softmax(step_logits(history), -1);  // [rows, V]
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  lprobs.select(1, kPadId).fill_(kNegInf);
  lprobs.select(1, kBosId).fill_(kNegInf);
  return lprobs;
}

void TransformerStepModel::select(const torch::Tensor& rows, const torch::Tensor& sentences) {
  if (sentences.defined()) {
    memory_ = memory_.index_select(0, sentences);    // [sentences', S, d_model]
    padding_ = padding_.index_select(0, sentences);  // [sentences', S]
  }
  if (use_cache_) state_.select(rows, sentences);
}

}  // namespace aiayn
