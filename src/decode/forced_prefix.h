// Target prefixes (CTranslate2's target_prefix, OpenNMT-py's -tgt_prefix):
// each row's first tokens are forced, keeping the model's log-probability of
// each, after which search goes on as usual. A wrapper around any step
// model; an empty prefix leaves the row's log-probabilities untouched.
#pragma once
#include <vector>

#include "src/decode/step_model.h"

namespace aiayn {

class ForcedPrefixStepModel : public StepModel {
 public:
  // prefixes: one per initial row of the search (tokens, without bos).
  ForcedPrefixStepModel(StepModel& inner, std::vector<std::vector<int64_t>> prefixes);
  int64_t vocab() const override { return inner_.vocab(); }
  int64_t max_positions() const override { return inner_.max_positions(); }
  torch::Device device() const override { return inner_.device(); }
  torch::Tensor step(const torch::Tensor& history) override;
  void select(const torch::Tensor& rows, const torch::Tensor& sentences) override;

 private:
  StepModel& inner_;
  std::vector<std::vector<int64_t>> prefixes_;  // one per live row
};

}  // namespace aiayn
