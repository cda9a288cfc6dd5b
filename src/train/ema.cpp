#include "src/train/ema.h"

#include <algorithm>

#include "src/common/error.h"

namespace aiayn {

ExponentialMovingAverage::ExponentialMovingAverage(
    const torch::OrderedDict<std::string, torch::Tensor>& params, double decay)
    : decay_(decay) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    slots_.push_back({p.key(), p.value(), p.value().detach().clone()});
  }
}

double ExponentialMovingAverage::decay_at(int64_t step) const {
  return std::min(decay_, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void ExponentialMovingAverage::update(int64_t step) {
  torch::NoGradGuard no_grad;
  const double d = decay_at(step);
  // ema + (1 - d) (w - ema) = d ema + (1 - d) w, one fused kernel per tensor.
  for (auto& s : slots_) s.average.lerp_(s.param.detach(), 1.0 - d);
}

std::map<std::string, torch::Tensor> ExponentialMovingAverage::weights() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : slots_) out[s.name] = s.average;
  return out;
}

void ExponentialMovingAverage::load(const std::map<std::string, torch::Tensor>& weights,
                                    const std::string& origin) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    auto it = weights.find(s.name);
    if (it == weights.end()) throw InputError(origin + ": no averaged weight \"" + s.name + "\"");
    if (it->second.sizes() != s.average.sizes()) {
      throw InputError(origin + ": averaged weight \"" + s.name + "\" has the wrong shape");
    }
    s.average.copy_(it->second);
  }
}

ExponentialMovingAverage::Scope::Scope(ExponentialMovingAverage* ema) : ema_(ema) {
  if (ema_ == nullptr) return;
  torch::NoGradGuard no_grad;
  for (auto& s : ema_->slots_) {
    raw_.push_back(s.param.detach().clone());
    s.param.detach().copy_(s.average);
  }
}

ExponentialMovingAverage::Scope::~Scope() {
  if (ema_ == nullptr) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < raw_.size(); ++i) ema_->slots_[i].param.detach().copy_(raw_[i]);
}

}  // namespace aiayn
