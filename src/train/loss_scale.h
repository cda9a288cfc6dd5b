// The dynamic loss scale of fp16 training (Micikevicius et al., 2018, 3.2):
// the loss is multiplied by S before the backward pass so that small
// gradients survive fp16's range; an update whose gradients overflow is
// skipped and S halved; after `growth_interval` good updates in a row S
// doubles, up to the initial scale. The loss here is a sum over target
// tokens, not GradScaler's mean: each logit's gradient is already up to 1
// before scaling, so the scale starts at 2^15 and stays there or below
// (2^16 would overflow fp16's 65,504 on one confidently wrong token).
// GradScaler's growth interval and factors.
#pragma once
#include <cstdint>

namespace aiayn {

class DynamicLossScale {
 public:
  static constexpr double kInitial = 32768.0;  // 2^15, also the ceiling
  static constexpr int64_t kGrowthInterval = 2000;

  // A scale saved in a checkpoint, or the initial one.
  explicit DynamicLossScale(double scale = kInitial, int64_t good_updates = 0);

  double scale() const { return scale_; }
  int64_t good_updates() const { return good_updates_; }
  // After an update: `overflowed` when its gradients were not finite.
  void update(bool overflowed);

 private:
  double scale_;
  int64_t good_updates_;
};

}  // namespace aiayn
