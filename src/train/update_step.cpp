#include "src/train/update_step.h"

#include <chrono>

#include <cmath>
#include <string>

#include "src/common/error.h"
#include "src/train/distributed.h"

namespace aiayn {

Tally Tally::of(const torch::Tensor& loss, const torch::Tensor& nll, int64_t src_tokens, int64_t tgt_tokens) {
  auto l = loss.detach().to(torch::kDouble);
  // new_full fills on the device: no host-to-device copy to wait for.
  return {torch::stack({l, nll.detach().to(torch::kDouble), l.new_full({}, static_cast<double>(src_tokens)),
                        l.new_full({}, static_cast<double>(tgt_tokens))})};  // [4]
}

Tally Tally::of(double loss, double nll, int64_t src_tokens, int64_t tgt_tokens,
                const torch::Device& device) {
  return {torch::tensor({loss, nll, static_cast<double>(src_tokens), static_cast<double>(tgt_tokens)},
                        torch::TensorOptions().dtype(torch::kDouble))
              .to(device)};  // [4]
}

void Tally::add(const Tally& o) {
  if (o.empty()) return;
  sums = empty() ? o.sums.clone() : sums + o.sums;  // [4]
}

Tally::Values Tally::read() const {
  if (empty()) return {};
  auto host = sums.to(torch::kCPU);  // [4]
  const double* v = host.data_ptr<double>();
  return {v[0], v[1], static_cast<int64_t>(v[2]), static_cast<int64_t>(v[3])};
}

UpdateStep::UpdateStep(std::vector<torch::Tensor> params, Adam& adam, const TrainConfig& config,
                       int64_t d_model, Communicator* comm, std::optional<DynamicLossScale> loss_scale)
    : params_(std::move(params)),
      adam_(adam),
      config_(config),
      d_model_(d_model),
      comm_(comm),
      scale_(std::move(loss_scale)) {
  if (config_.precision == Precision::fp16 && !scale_) scale_.emplace();
}

double UpdateStep::grad_norm() const {
  return grad_norm_.defined() ? grad_norm_.to(torch::kCPU).to(torch::kDouble).data_ptr<double>()[0] : 0.0;
}

namespace {

// The update's one read from the device: 0 when the loss and the gradient
// norm are finite, 1 when the loss is not, 2 when only the gradient is not.
int64_t outcome_flag(const torch::Tensor& loss, const torch::Tensor& grad_norm) {
  auto bad_loss = torch::isfinite(loss).logical_not().to(torch::kLong);       // []
  auto bad_grad = torch::isfinite(grad_norm).logical_not().to(torch::kLong);  // []
  return torch::where(bad_loss > 0, bad_loss, bad_grad * 2).item<int64_t>();
}

}  // namespace

UpdateStep::Outcome UpdateStep::apply(Tally& tally, int64_t step) {
  if (comm_ != nullptr) {
    // The update's sums and gradients over all ranks; every parameter has a
    // gradient on every rank so that the collectives line up.
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    comm_->all_reduce_sum({tally.sums}, "loss all-reduce at step " + std::to_string(step));
    const auto synced = Clock::now();
    std::vector<torch::Tensor> grads;
    for (auto& p : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    comm_->all_reduce_sum(grads, "gradient all-reduce at step " + std::to_string(step));
    sync_seconds_ += std::chrono::duration<double>(synced - start).count();
    gradient_reduce_seconds_ += std::chrono::duration<double>(Clock::now() - synced).count();
  }
  // Gradients of the summed (and, under fp16, scaled) loss, divided by the
  // target tokens of the whole update: the mean per-token loss, however the
  // update was split.
  {
    torch::NoGradGuard no_grad;
    auto divisor = tally.sums[3] * loss_multiplier();  // [] on the device
    for (auto& p : params_) {
      if (p.grad().defined()) p.mutable_grad().div_(divisor);
    }
  }
  grad_norm_ = gradient_norm(params_);
  const int64_t flag = outcome_flag(tally.sums[0], grad_norm_);
  if (flag == 1) {
    adam_.zero_grad();
    if (++bad_in_a_row_ >= config_.max_bad_steps) {
      throw DivergenceError("training diverged: " + std::to_string(bad_in_a_row_) +
                            " non-finite losses in a row, the last at step " + std::to_string(step) +
                            " (lower train.lr_scale or set train.clip_norm)");
    }
    return Outcome::skipped_loss;
  }
  bad_in_a_row_ = 0;
  if (scale_) scale_->update(flag == 2);
  if (flag == 2) {
    // A finite loss can still have an overflowing gradient: never apply it.
    adam_.zero_grad();
    return Outcome::skipped_gradient;
  }
  clip_gradients(params_, grad_norm_, config_.clip_norm);
  adam_.step(learning_rate(config_, d_model_, step));
  adam_.zero_grad();
  return Outcome::applied;
}

}  // namespace aiayn
