#include "src/train/loss_scale.h"

#include <algorithm>

namespace aiayn {

DynamicLossScale::DynamicLossScale(double scale, int64_t good_updates)
    : scale_(scale), good_updates_(good_updates) {}

void DynamicLossScale::update(bool overflowed) {
  if (overflowed) {
    // Never below 1: a scale under 1 would only lose the small gradients it exists to keep.
    scale_ = std::max(1.0, scale_ / 2);
    good_updates_ = 0;
    return;
  }
  if (++good_updates_ >= kGrowthInterval) {
    scale_ = std::min(scale_ * 2, kInitial);
    good_updates_ = 0;
  }
}

}  // namespace aiayn
