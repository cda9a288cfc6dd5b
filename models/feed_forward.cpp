#include "models/feed_forward.h"

namespace aiayn {

namespace F = torch::nn::functional;

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) : options(o) {
  linear1 = register_module("linear1", torch::nn::Linear(o.d_model(), o.d_ff()));
  linear2 = register_module("linear2", torch::nn::Linear(o.d_ff(), o.d_model()));
  // torch::nn::Linear's own initialisation, U(+-1/sqrt(fan_in)) for weights
  // and biases, as torch.nn.TransformerEncoderLayer's FFN: with Xavier here
  // (2.2 times wider for linear2), Multi30k training learned markedly slower
  // than the torch.nn reference of bench/train_reference.py.
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = torch::relu(int8_1.defined() ? int8_1(x) : linear1(x));  // [B, T, d_ff]
  if (options.activation_dropout() > 0.0 && is_training()) {
    h = F::dropout(h, F::DropoutFuncOptions().p(options.activation_dropout()).training(true));
  }
  return int8_2.defined() ? int8_2(h) : linear2(h);  // [B, T, d_model]
}

void FeedForwardImpl::quantize_int8() {
  int8_1 = Int8Linear(linear1->weight, linear1->bias);
  int8_2 = Int8Linear(linear2->weight, linear2->bias);
  release_float_weight(linear1->weight);
  release_float_weight(linear2->weight);
}

}  // namespace aiayn
