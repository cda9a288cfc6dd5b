// One optimizer update from the gradients an update's batches accumulated
// (section 5.3), with the policy around it: the sums all-reduced over ranks,
// a non-finite loss or gradient norm skipping the update, too many in a row
// ending training, gradients of the summed loss divided by the update's
// target tokens, clipping, then Adam at the schedule's learning rate. Apart
// from the trainer, so that it is tested on plain tensors
// (tests/test_train_math.cpp).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "src/common/train_config.h"
#include "src/train/optimizer.h"

namespace aiayn {

class Communicator;

// Sums over the batches of one or more updates.
struct Tally {
  double loss = 0, nll = 0;
  int64_t src_tokens = 0, tgt_tokens = 0;
  void add(const Tally& o) {
    loss += o.loss;
    nll += o.nll;
    src_tokens += o.src_tokens;
    tgt_tokens += o.tgt_tokens;
  }
};

class UpdateStep {
 public:
  enum class Outcome { applied, skipped_loss, skipped_gradient };

  // params: the model's parameters, in the optimizer's order. comm: the
  // process group of data-parallel training, or null.
  UpdateStep(std::vector<torch::Tensor> params, Adam& adam, const TrainConfig& config,
             int64_t d_model, Communicator* comm = nullptr);

  // Applies update number `step` (1-based). `tally`: this rank's sums over
  // the update's batches; it becomes the sums over all ranks. A skipped
  // update leaves the parameters as they were and their gradients zero.
  // Throws DivergenceError at train.max_bad_steps non-finite losses in a row.
  Outcome apply(Tally& tally, int64_t step);
  // The gradient norm before clipping of the last applied (or skipped for
  // its gradient) update.
  double grad_norm() const { return grad_norm_; }

 private:
  std::vector<torch::Tensor> params_;
  Adam& adam_;
  const TrainConfig& config_;
  int64_t d_model_;
  Communicator* comm_;
  int64_t bad_in_a_row_ = 0;
  double grad_norm_ = 0;
};

}  // namespace aiayn
