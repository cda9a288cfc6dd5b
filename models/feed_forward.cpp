#include "models/feed_forward.h"

namespace aiayn {

namespace F = torch::nn::functional;

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) : options(o) {
  linear1 = register_module("linear1", torch::nn::Linear(o.d_model(), o.d_ff()));
  linear2 = register_module("linear2", torch::nn::Linear(o.d_ff(), o.d_model()));
  w1_ = Projection(linear1->weight, linear1->bias);
  w2_ = Projection(linear2->weight, linear2->bias);
  // torch::nn::Linear's own initialisation, U(+-1/sqrt(fan_in)) for weights
  // and biases, as torch.nn.TransformerEncoderLayer's FFN: with Xavier here
  // (2.2 times wider for linear2), Multi30k training learned markedly slower
  // than the torch.nn reference of bench/train_reference.py.
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = torch::relu(w1_(x));  // [B, T, d_ff]
  if (options.activation_dropout() > 0.0 && is_training()) {
    h = F::dropout(h, F::DropoutFuncOptions().p(options.activation_dropout()).training(true));
  }
  return w2_(h);  // [B, T, d_model]
}

void FeedForwardImpl::quantize_int8() {
  w1_.quantize();
  w2_.quantize();
  release_float_weight(linear1->weight);
  release_float_weight(linear2->weight);
}

void FeedForwardImpl::pack_weights() {
  w1_.pack();
  w2_.pack();
}

}  // namespace aiayn
