#include "models/feed_forward.h"

namespace aiayn {

namespace F = torch::nn::functional;

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) : options(o) {
  linear1 = register_module("linear1", torch::nn::Linear(o.d_model(), o.d_ff()));
  linear2 = register_module("linear2", torch::nn::Linear(o.d_ff(), o.d_model()));
  torch::NoGradGuard no_grad;
  for (auto* l : {&linear1, &linear2}) {
    torch::nn::init::xavier_uniform_((*l)->weight);
    (*l)->bias.zero_();
  }
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = torch::relu(linear1(x));  // [B, T, d_ff]
  if (options.activation_dropout() > 0.0 && is_training()) {
    h = F::dropout(h, F::DropoutFuncOptions().p(options.activation_dropout()).training(true));
  }
  return linear2(h);  // [B, T, d_model]
}

}  // namespace aiayn
