#include "src/train/update_step.h"

#include <cmath>
#include <string>

#include "src/common/error.h"
#include "src/train/distributed.h"

namespace aiayn {

UpdateStep::UpdateStep(std::vector<torch::Tensor> params, Adam& adam, const TrainConfig& config,
                       int64_t d_model, Communicator* comm)
    : params_(std::move(params)), adam_(adam), config_(config), d_model_(d_model), comm_(comm) {}

UpdateStep::Outcome UpdateStep::apply(Tally& tally, int64_t step) {
  if (comm_ != nullptr) {  // the update's sums over all ranks
    auto sums = torch::tensor({tally.loss, tally.nll, static_cast<double>(tally.src_tokens),
                               static_cast<double>(tally.tgt_tokens)}, torch::kDouble);  // [4]
    comm_->all_reduce_sum({sums}, "loss all-reduce at step " + std::to_string(step));
    tally = {sums[0].item<double>(), sums[1].item<double>(), sums[2].item<int64_t>(),
             sums[3].item<int64_t>()};
  }
  if (!std::isfinite(tally.loss)) {
    adam_.zero_grad();
    if (++bad_in_a_row_ >= config_.max_bad_steps) {
      throw DivergenceError("training diverged: " + std::to_string(bad_in_a_row_) +
                            " non-finite losses in a row, the last at step " +
                            std::to_string(step) + " (lower train.lr_scale or set train.clip_norm)");
    }
    return Outcome::skipped_loss;
  }
  bad_in_a_row_ = 0;
  if (comm_ != nullptr) {
    std::vector<torch::Tensor> grads;
    for (auto& p : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    comm_->all_reduce_sum(grads, "gradient all-reduce at step " + std::to_string(step));
  }
  // Gradients of the summed loss, divided by the target tokens of the whole
  // update: the mean per-token loss, however the update was split.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : params_) {
      if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(tally.tgt_tokens));
    }
  }
  grad_norm_ = clip_grad_norm(params_, config_.clip_norm);
  if (!std::isfinite(grad_norm_)) {
    // A finite loss can still have an overflowing gradient: never apply it.
    adam_.zero_grad();
    return Outcome::skipped_gradient;
  }
  adam_.step(learning_rate(config_, d_model_, step));
  adam_.zero_grad();
  return Outcome::applied;
}

}  // namespace aiayn
