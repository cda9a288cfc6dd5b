#include "src/train/optimizer.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <map>
#include <stdexcept>

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

Adam::Adam(const torch::OrderedDict<std::string, torch::Tensor>& params, double beta1, double beta2,
           double eps, double weight_decay, AdamKernel kernel)
    : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), kernel_(kernel) {
  if (kernel_ == AdamKernel::libtorch_fused && !libtorch_fused_adam_available()) {
    throw std::invalid_argument("Adam: LibTorch " TORCH_VERSION " has no fused AdamW (2.4 and later have)");
  }
  for (const auto& item : params) {
    if (!item.value().requires_grad()) continue;
    slots_.push_back(
        {item.key(), item.value(), torch::zeros_like(item.value()), torch::zeros_like(item.value())});
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
void adam_range(float* p, const float* g, float* m, float* v, const AdamStep& a, int64_t begin, int64_t end) {
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

// The fused AdamW with a CPU kernel beside CUDA's: LibTorch 2.4 and later.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define AIAYN_FUSED_ADAMW 1
#else
#define AIAYN_FUSED_ADAMW 0
#endif

bool libtorch_fused_adam_available() {
#if AIAYN_FUSED_ADAMW
  return true;
#else
  return false;
#endif
}

void Adam::fused_step(const std::vector<Slot*>& slots, double lr) {
#if AIAYN_FUSED_ADAMW
  // One call per device: the kernel takes lists on one device.
  std::map<std::string, std::vector<Slot*>> by_device;
  for (auto* s : slots) by_device[s->param.device().str()].push_back(s);
  for (auto& [device, group] : by_device) {
    std::vector<torch::Tensor> p, g, m, v, steps;
    // The step count as the kernel reads it (a float tensor per parameter);
    // filled on the device, so nothing waits.
    auto step = torch::full({}, static_cast<double>(steps_),
                            torch::TensorOptions().dtype(torch::kFloat32).device(group[0]->param.device()));
    for (auto* s : group) {
      p.push_back(s->param);
      g.push_back(s->param.grad());
      m.push_back(s->exp_avg);
      v.push_back(s->exp_avg_sq);
      steps.push_back(step);
    }
    // AdamW's decoupled decay; with weight_decay 0 it is the paper's Adam.
    at::_fused_adamw_(p, g, m, v, {}, steps, lr, beta1_, beta2_, weight_decay_, eps_,
                      /*amsgrad=*/false, /*maximize=*/false);
  }
#else
  (void)slots, (void)lr;
#endif
}

void Adam::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  // The arithmetic of torch.optim.Adam, so both agree step for step.
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
  const AdamStep a{static_cast<float>(beta1_),           static_cast<float>(1.0 - beta1_),
                   static_cast<float>(beta2_),           static_cast<float>(1.0 - beta2_),
                   static_cast<float>(std::sqrt(bias2)), static_cast<float>(eps_),
                   static_cast<float>(-lr / bias1),      static_cast<float>(1.0 - lr * weight_decay_)};
  std::vector<Slot*> for_libtorch;
  for (auto& s : slots_) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    const bool ours = fusable(s.param) && fusable(g) && fusable(s.exp_avg) && fusable(s.exp_avg_sq);
    if ((kernel_ == AdamKernel::libtorch_fused ||
         (kernel_ == AdamKernel::automatic && !ours && libtorch_fused_adam_available())) &&
        g.scalar_type() == s.param.scalar_type()) {
      for_libtorch.push_back(&s);
      continue;
    }
    if (ours && kernel_ == AdamKernel::automatic) {
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
  if (!for_libtorch.empty()) fused_step(for_libtorch, lr);
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

torch::Tensor gradient_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).unsqueeze(0));  // [1]
  }
  if (norms.empty()) return torch::zeros({});
  return torch::cat(norms).norm(2);  // []
}

void clip_gradients(const std::vector<torch::Tensor>& params, const torch::Tensor& norm, double max_norm) {
  if (max_norm <= 0) return;
  torch::NoGradGuard no_grad;
  // min(1, max_norm / (norm + 1e-6)) on the device, in double as the host
  // computed it: a gradient under the limit is multiplied by exactly 1.
  auto scale = (max_norm / (norm.to(torch::kDouble) + 1e-6)).clamp_max(1.0);  // []
  for (const auto& p : params) {
    if (p.grad().defined()) p.grad().mul_(scale);
  }
}

}  // namespace aiayn
