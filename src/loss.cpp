#include "src/loss.h"

namespace aiayn {

LossSums label_smoothed_nll(const torch::Tensor& logits, const torch::Tensor& targets,
                            double epsilon) {
  auto lprobs = torch::log_softmax(logits.to(torch::kFloat32), -1);  // [N, V]
  auto nll = -lprobs.gather(1, targets.unsqueeze(1)).squeeze(1);      // [N]
  auto nll_sum = nll.sum();
  if (epsilon == 0.0) return {nll_sum, nll_sum.detach()};
  auto uniform = -lprobs.mean(-1);  // [N]: cross-entropy against the uniform distribution
  auto loss = (1.0 - epsilon) * nll_sum + epsilon * uniform.sum();
  return {loss, nll_sum.detach()};
}

}  // namespace aiayn
