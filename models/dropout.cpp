#include "models/dropout.h"

#include <ATen/Parallel.h>

#include <limits>

namespace aiayn {

namespace {

// splitmix64's finaliser: a bijective mix, so distinct counters give
// independent-looking 64-bit words.
inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// out[i] = in[i] * keep(i) / (1 - p); one 64-bit hash gives two 32-bit draws.
void apply_mask(const float* in, float* out, int64_t n, double p, uint64_t seed) {
  const auto threshold = static_cast<uint64_t>(p * 4294967296.0);  // drop when draw < p * 2^32
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const uint64_t key = mix(seed);
  at::parallel_for(0, (n + 1) / 2, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {
      const uint64_t h = mix(key + static_cast<uint64_t>(pair) * 0x9E3779B97F4A7C15ULL);
      const int64_t i = 2 * pair;
      out[i] = (h & 0xFFFFFFFFULL) < threshold ? 0.0f : in[i] * scale;
      if (i + 1 < n) out[i + 1] = (h >> 32) < threshold ? 0.0f : in[i + 1] * scale;
    }
  });
}

struct HashedDropoutFunction : public torch::autograd::Function<HashedDropoutFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p,
                               int64_t seed) {
    auto in = x.contiguous();
    auto out = torch::empty_like(in);  // same shape as x
    apply_mask(in.data_ptr<float>(), out.data_ptr<float>(), in.numel(), p, static_cast<uint64_t>(seed));
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The same mask, recomputed from the seed: d out / d x is keep(i) / (1 - p).
    auto g = grads[0].contiguous();
    auto dx = torch::empty_like(g);  // same shape as x
    apply_mask(g.data_ptr<float>(), dx.data_ptr<float>(), g.numel(), ctx->saved_data["p"].toDouble(),
               static_cast<uint64_t>(ctx->saved_data["seed"].toInt()));
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor hashed_dropout(const torch::Tensor& x, double p, uint64_t seed) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32,
              "hashed_dropout: CPU float32 only, got ", x.device(), " ", x.scalar_type());
  TORCH_CHECK(p >= 0.0 && p < 1.0, "hashed_dropout: p must be in [0, 1), got ", p);
  return HashedDropoutFunction::apply(x, p, static_cast<int64_t>(seed));
}

DropoutImpl::DropoutImpl(double p) : p(p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || p == 0.0) return x;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32) {
    return torch::dropout(x, p, /*train=*/true);
  }
  // One draw from LibTorch's generator per call keeps seeding and resume exact.
  // Drawn on the CPU generator and read through the pointer (no .item()):
  // a read-back counter of the training step sees no op here.
  const auto draw = torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong);  // [1]
  const int64_t seed = draw.data_ptr<int64_t>()[0];
  return hashed_dropout(x, p, static_cast<uint64_t>(seed));
}

}  // namespace aiayn
