// An ensemble as search sees it: several models decoding the same source,
// their next-token log-probabilities averaged at every step (Marian's
// ensembles, with equal weights; fairseq averages probabilities instead).
// One model's ensemble is that model; two copies of it give its own
// log-probabilities again, exactly.
#pragma once
#include <memory>
#include <vector>

#include "src/decode/step_model.h"

namespace aiayn {

class EnsembleStepModel : public StepModel {
 public:
  // Members must share the target vocabulary (checked: InputError).
  explicit EnsembleStepModel(std::vector<std::unique_ptr<StepModel>> members);
  int64_t vocab() const override;
  // The shortest member's: every member must hold the output.
  int64_t max_positions() const override;
  torch::Device device() const override;
  torch::Tensor step(const torch::Tensor& history) override;
  void select(const torch::Tensor& rows, const torch::Tensor& sentences) override;

 private:
  std::vector<std::unique_ptr<StepModel>> members_;
};

}  // namespace aiayn
