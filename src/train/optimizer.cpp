#include "src/train/optimizer.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "models/vector_math.h"
#include "src/common/error.h"

namespace aiayn {

double learning_rate(const TrainConfig& c, int64_t d_model, int64_t step) {
  const double s = static_cast<double>(std::max<int64_t>(step, 1));
  const double w = static_cast<double>(c.warmup_steps);
  if (c.lr_schedule == LrSchedule::inverse_sqrt) {
    // fairseq: linear warm-up to lr, then lr * sqrt(warmup / step).
    return c.lr * std::min(s / w, std::sqrt(w / s));
  }
  return c.lr_scale * std::pow(static_cast<double>(d_model), -0.5) *
         std::min(std::pow(s, -0.5), s * std::pow(w, -1.5));
}

Adam::Adam(const torch::OrderedDict<std::string, torch::Tensor>& params, double beta1,
           double beta2, double eps, double weight_decay)
    : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  for (const auto& item : params) {
    if (!item.value().requires_grad()) continue;
    slots_.push_back({item.key(), item.value(), torch::zeros_like(item.value()),
                      torch::zeros_like(item.value())});
  }
}

void Adam::zero_grad() {
  for (auto& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
  }
}

namespace {

// The scalars of one update, rounded to float as LibTorch's kernels round them.
struct AdamStep {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, bias2_sqrt, eps, minus_step;
  float decay;  // AdamW's 1 - lr * weight_decay (1: plain Adam)
};

// torch.optim.Adam's float arithmetic, operation for operation (LibTorch's
// vector kernels fuse some multiply-adds, so the two agree to rounding), in
// one pass instead of its eight over the parameters:
//   m = m b1 + (1 - b1) g;  v = v b2 + (1 - b2) g g;
//   p = p (1 - lr wd) + (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps),
// where wd (AdamW's decoupled weight decay) scales p before the step.
AIAYN_VECTOR_CLONES
void adam_range(float* p, const float* g, float* m, float* v, const AdamStep& a, int64_t begin,
                int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    m[i] = m[i] * a.beta1 + a.one_minus_beta1 * g[i];
    v[i] = v[i] * a.beta2 + a.one_minus_beta2 * g[i] * g[i];
    const float denom = __builtin_sqrtf(v[i]) / a.bias2_sqrt + a.eps;
    p[i] = p[i] * a.decay + a.minus_step * m[i] / denom;
  }
}

bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  // The arithmetic of torch.optim.Adam, so both agree step for step.
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
  const AdamStep a{static_cast<float>(beta1_), static_cast<float>(1.0 - beta1_),
                   static_cast<float>(beta2_), static_cast<float>(1.0 - beta2_),
                   static_cast<float>(std::sqrt(bias2)), static_cast<float>(eps_),
                   static_cast<float>(-lr / bias1), static_cast<float>(1.0 - lr * weight_decay_)};
  for (auto& s : slots_) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    if (fusable(s.param) && fusable(g) && fusable(s.exp_avg) && fusable(s.exp_avg_sq)) {
      float* p = s.param.data_ptr<float>();
      const float* gd = g.data_ptr<float>();
      float *m = s.exp_avg.data_ptr<float>(), *v = s.exp_avg_sq.data_ptr<float>();
      at::parallel_for(0, s.param.numel(), 16384,
                       [&](int64_t begin, int64_t end) { adam_range(p, gd, m, v, a, begin, end); });
      continue;
    }
    if (weight_decay_ > 0) s.param.mul_(1.0 - lr * weight_decay_);
    s.exp_avg.mul_(beta1_).add_(g, 1.0 - beta1_);
    s.exp_avg_sq.mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);
    auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(eps_);
    s.param.addcdiv_(s.exp_avg, denom, -lr / bias1);
  }
}

std::map<std::string, torch::Tensor> Adam::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : slots_) {
    out["exp_avg." + s.name] = s.exp_avg;
    out["exp_avg_sq." + s.name] = s.exp_avg_sq;
  }
  return out;
}

void Adam::load_state(const std::map<std::string, torch::Tensor>& state, int64_t steps,
                      const std::string& origin) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    const std::pair<std::string, torch::Tensor*> entries[] = {{"exp_avg.", &s.exp_avg},
                                                              {"exp_avg_sq.", &s.exp_avg_sq}};
    for (const auto& [key, dst] : entries) {
      auto it = state.find(key + s.name);
      if (it == state.end() || !it->second.sizes().equals(dst->sizes())) {
        throw InputError(origin + ": optimizer state " + key + s.name +
                         (it == state.end() ? " is missing" : " has the wrong shape"));
      }
      dst->copy_(it->second);
    }
  }
  steps_ = steps;
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).unsqueeze(0));
  }
  if (norms.empty()) return 0.0;
  const double total = torch::cat(norms).norm(2).item<double>();
  if (max_norm > 0 && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

}  // namespace aiayn
