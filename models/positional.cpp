#include "models/positional.h"

#include <cmath>

namespace aiayn {

torch::Tensor sinusoid_table(int64_t max_positions, int64_t d_model) {
  auto dtype = torch::TensorOptions().dtype(torch::kFloat64);
  auto pos = torch::arange(max_positions, dtype).unsqueeze(1);            // [P, 1]
  auto two_i = torch::arange(0, d_model, 2, dtype);                       // [ceil(d/2)]
  auto angle = pos * torch::exp(two_i * (-std::log(10000.0) / d_model));  // [P, ceil(d/2)]
  auto table = torch::zeros({max_positions, d_model}, dtype);             // [P, d_model]
  using torch::indexing::Slice;
  table.index_put_({Slice(), Slice(0, torch::indexing::None, 2)}, torch::sin(angle));
  table.index_put_({Slice(), Slice(1, torch::indexing::None, 2)},
                   torch::cos(angle.narrow(1, 0, d_model / 2)));
  return table.to(torch::kFloat32);
}

PositionalEncodingImpl::PositionalEncodingImpl(const PositionalEncodingOptions& o) : options(o) {
  if (o.learned()) {
    auto w = torch::empty({o.max_positions(), o.d_model()});
    torch::nn::init::normal_(w, 0.0, std::pow(static_cast<double>(o.d_model()), -0.5));
    table = register_parameter("weight", w);
  } else {
    table = register_buffer("table", sinusoid_table(o.max_positions(), o.d_model()));
  }
}

torch::Tensor PositionalEncodingImpl::forward(int64_t offset, int64_t length) {
  TORCH_CHECK(offset + length <= options.max_positions(), "position ", offset + length - 1,
              " is beyond the model's max_positions ", options.max_positions());
  return table.narrow(0, offset, length);  // [length, d_model]
}

}  // namespace aiayn
