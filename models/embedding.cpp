#include "models/embedding.h"

#include <cmath>

namespace aiayn {

TokenEmbeddingImpl::TokenEmbeddingImpl(const TokenEmbeddingOptions& o) : options(o) {
  TORCH_CHECK(o.vocab() > 0 && o.d_model() > 0, "TokenEmbedding: sizes must be positive");
  weight = register_parameter("weight", torch::empty({o.vocab(), o.d_model()}));
  torch::NoGradGuard no_grad;
  // N(0, d_model^-1/2): after the sqrt(d_model) scaling the embedded rows have
  // unit variance, the scale of the sinusoids they are added to.
  weight.normal_(0.0, std::pow(static_cast<double>(o.d_model()), -0.5));
  if (o.pad_id() >= 0 && o.pad_id() < o.vocab()) weight[o.pad_id()].zero_();
}

torch::Tensor TokenEmbeddingImpl::forward(const torch::Tensor& ids) {
  auto e = torch::embedding(weight, ids, options.pad_id());  // [B, T, d_model]
  return e * std::sqrt(static_cast<double>(options.d_model()));
}

}  // namespace aiayn
