#include "models/projection.h"

namespace aiayn {

namespace F = torch::nn::functional;

Projection::Projection(torch::Tensor weight, torch::Tensor bias, int64_t first, int64_t rows)
    : weight_(std::move(weight)), bias_(std::move(bias)), first_(first), rows_(rows) {}

torch::Tensor Projection::weight() const {
  return rows_ < 0 ? weight_ : weight_.narrow(0, first_, rows_);  // [rows, in]
}

torch::Tensor Projection::bias() const {
  if (!bias_.defined() || rows_ < 0) return bias_;
  return bias_.narrow(0, first_, rows_);  // [rows]
}

torch::Tensor Projection::operator()(const torch::Tensor& x) const {
  if (int8_) return (*int8_)(x);          // [..., rows]
  if (packed_) return (*packed_)(x);      // [..., rows]
  return F::linear(x, weight(), bias());  // [..., rows]
}

void Projection::quantize() {
  if (!int8_) int8_ = std::make_shared<const Int8Linear>(weight(), bias());
  packed_.reset();
}

void Projection::pack() {
  if (int8_ || packed_ || !weight_.device().is_cpu() || !PackedLinear::available()) return;
  packed_ = std::make_shared<const PackedLinear>(weight(), bias());
}

}  // namespace aiayn
