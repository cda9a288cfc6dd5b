// Dropout (Srivastava et al., 2014) as section 5.4 applies it: to every
// sub-layer's output and to the sums of embeddings and positions.
//
// Why not torch::nn::Dropout: without MKL, LibTorch 1.13 draws the Bernoulli
// mask one element at a time on one thread, several percent of a training
// step here. This one derives each element's keep/drop from a counter-based
// hash of (seed, element index): parallel, independent of the thread count,
// and needs no stored mask, since the backward pass recomputes it from the
// seed. The seed is drawn from LibTorch's generator, so torch::manual_seed
// and the checkpointed RNG state make runs repeatable and resumable.
#pragma once
#include <torch/torch.h>

namespace aiayn {

// x with each element zeroed with probability p and the rest scaled by
// 1 / (1 - p); differentiable. CPU float32 only (see dropout_applies).
torch::Tensor hashed_dropout(const torch::Tensor& x, double p, uint64_t seed);

class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(double p = 0.1);
  // Identity in eval mode or with p = 0; LibTorch's dropout off the CPU.
  torch::Tensor forward(const torch::Tensor& x);
  double p;
};
TORCH_MODULE(Dropout);

}  // namespace aiayn
