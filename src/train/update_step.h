// One optimizer update from the gradients an update's batches accumulated
// (section 5.3), with the policy around it: the sums all-reduced over ranks,
// a non-finite loss or gradient norm skipping the update, too many in a row
// ending training, gradients of the summed loss divided by the update's
// target tokens, clipping, then Adam at the schedule's learning rate. Apart
// from the trainer, so that it is tested on plain tensors
// (tests/test_train_math.cpp).
//
// On a GPU every host read waits for the device. The sums stay on the
// device and the host reads one flag per update (applied, or skipped for
// which reason); the losses, token counts and gradient norm are read once
// per log interval.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "src/train/loss_scale.h"
#include "src/train/optimizer.h"
#include "src/train/train_config.h"

namespace aiayn {

class Communicator;

// Sums over the batches of one or more updates, on the device of the
// losses they sum, so that adding them never waits for it.
struct Tally {
  torch::Tensor sums;  // [4] float64: loss, nll, source tokens, target tokens; undefined = none

  struct Values {
    double loss = 0, nll = 0;
    int64_t src_tokens = 0, tgt_tokens = 0;
  };
  // A batch's sums: `loss` and `nll` scalar tensors on the device.
  static Tally of(const torch::Tensor& loss, const torch::Tensor& nll, int64_t src_tokens,
                  int64_t tgt_tokens);
  // The same from host numbers (tests), on `device`.
  static Tally of(double loss, double nll, int64_t src_tokens, int64_t tgt_tokens,
                  const torch::Device& device = torch::kCPU);
  void add(const Tally& o);
  bool empty() const { return !sums.defined(); }
  // The sums on the host: waits for the device.
  Values read() const;
};

class UpdateStep {
 public:
  enum class Outcome { applied, skipped_loss, skipped_gradient };

  // params: the model's parameters, in the optimizer's order. comm: the
  // process group of data-parallel training, or null. With
  // config.precision fp16 it keeps a dynamic loss scale, `loss_scale` if
  // resumed.
  UpdateStep(std::vector<torch::Tensor> params, Adam& adam, const TrainConfig& config, int64_t d_model,
             Communicator* comm = nullptr, std::optional<DynamicLossScale> loss_scale = std::nullopt);

  // What the batches' losses are multiplied by before their backward pass
  // (1 unless fp16).
  double loss_multiplier() const { return scale_ ? scale_->scale() : 1.0; }
  const std::optional<DynamicLossScale>& loss_scale() const { return scale_; }

  // Applies update number `step` (1-based). `tally`: this rank's sums over
  // the update's batches; it becomes the sums over all ranks. A skipped
  // update leaves the parameters as they were and their gradients zero;
  // under fp16 an overflowing gradient halves the loss scale. Throws
  // DivergenceError at train.max_bad_steps non-finite losses in a row.
  Outcome apply(Tally& tally, int64_t step);
  // The gradient norm before clipping of the last update, applied or
  // skipped; read from the device (a wait on a GPU).
  double grad_norm() const;
  // Seconds spent, over all updates so far, in the all-reduce of the loss
  // sums (the first collective after backward: mostly waiting for the
  // slowest rank) and in the gradients' (the data moved, the ranks then in
  // step). Zero in one process.
  double sync_seconds() const { return sync_seconds_; }
  double gradient_reduce_seconds() const { return gradient_reduce_seconds_; }

 private:
  std::vector<torch::Tensor> params_;
  Adam& adam_;
  const TrainConfig& config_;
  int64_t d_model_;
  Communicator* comm_;
  double sync_seconds_ = 0, gradient_reduce_seconds_ = 0;
  std::optional<DynamicLossScale> scale_;
  int64_t bad_in_a_row_ = 0;
  torch::Tensor grad_norm_;  // scalar on the device
};

}  // namespace aiayn
