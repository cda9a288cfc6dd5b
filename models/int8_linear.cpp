#include "models/int8_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include "aiayn_version.h"

#include <cmath>
#include <stdexcept>

namespace aiayn {

namespace {

// Registered operators called through the boxed interface, so the code needs
// no header for the engine's packed-weight class (absent from some builds).
c10::IValue call_op(const c10::OperatorHandle& op, std::vector<c10::IValue> stack) {
  op.callBoxed(&stack);
  return stack.at(0);
}

[[maybe_unused]] const c10::OperatorHandle& prepack_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  return op;
}

const c10::OperatorHandle& linear_op() {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
  return op;
}

// oneDNN builds (JIT-compiles) a kernel for every new input shape and input
// quantization scale, about 0.35 ms each here, and a dynamic scale is new at
// nearly every call: measured through Python's quantize_dynamic as well, that
// makes int8 slower than fp32. So the op is shown few shapes and few scales:
// rows are rounded up to a few sizes, and one extra row holds -B and +B, B
// the power of two at or above max|x|, which fixes the range it quantizes
// (it always includes 0, so zero rows change nothing else). The price is up
// to one bit of input resolution.
int64_t padded_rows(int64_t n) {
  if (n <= 16) {
    int64_t p = 1;
    while (p < n) p *= 2;
    return p;
  }
  const int64_t step = n <= 256 ? 16 : 128;
  return (n + step - 1) / step * step;
}

}  // namespace

std::string int8_missing_ops(const std::vector<std::string>& ops) {
  std::string missing;
  for (const auto& name : ops) {
    if (!c10::Dispatcher::singleton().findSchema({name, ""}).has_value()) {
      missing += (missing.empty() ? "" : ", ") + name;
    }
  }
  return missing;
}

std::string int8_unavailable_reason() {
  if (PackedInt8Linear::available()) return "";  // our kernel needs no quantized ops
#if !AIAYN_INT8
  return std::string("this LibTorch (") + TORCH_VERSION +
         ") was built without int8: configure could not compile quantize_per_channel, one of the legacy quantized ops: "
         "decode in fp32, or build against a LibTorch that has them";
#else
  const auto missing = int8_missing_ops({"quantized::linear_prepack", "quantized::linear_dynamic"});
  if (missing.empty()) return "";
  return std::string("this LibTorch (") + TORCH_VERSION + ") does not register " + missing +
         " (the legacy quantized ops): decode in fp32, or use a LibTorch that has them";
#endif
}

std::string select_int8_engine() {
  if (PackedInt8Linear::available()) return "AVX-512 VNNI (aiayn's packed kernel)";
  // Preference order; "X86" and "FBGEMM" exist in official x86 builds of 2.x.
  for (const char* wanted : {"ONEDNN", "X86", "FBGEMM", "QNNPACK"}) {
    for (auto engine : at::globalContext().supportedQEngines()) {
      if (c10::toString(engine) == std::string(wanted)) {
        at::globalContext().setQEngine(engine);
        return wanted;
      }
    }
  }
  throw std::runtime_error("int8: this LibTorch has no quantized engine (onednn, fbgemm or qnnpack)");
}

void release_float_weight(torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  weight.set_data(torch::empty({0}, weight.options()));
}

Int8Linear::Int8Linear(const torch::Tensor& weight, const torch::Tensor& bias)
    : out_features_(weight.size(0)) {
  TORCH_CHECK(weight.device().is_cpu(), "int8 decoding runs on the CPU only");
  if (PackedInt8Linear::available()) {
    vnni_ = std::make_shared<const PackedInt8Linear>(weight, bias);
    return;
  }
  auto w = weight.detach().to(torch::kFloat).contiguous();  // [out, in]
  // Symmetric per output row: scale = max|w_row| / 127, zero point 0.
  auto scales = (w.abs().amax(1).to(torch::kDouble) / 127.0).clamp_min(1e-12);  // [out]
  auto zero_points = torch::zeros({w.size(0)}, torch::kLong);                   // [out]
#if AIAYN_INT8
  auto q = torch::quantize_per_channel(w, scales, zero_points, 0, torch::kQInt8);  // [out, in]
  c10::optional<at::Tensor> b;
  if (bias.defined()) b = bias.detach().to(torch::kFloat).contiguous();
  packed_ = call_op(prepack_op(), {q, b});
#else
  TORCH_CHECK(false, "int8: ", int8_unavailable_reason());
#endif
}

torch::Tensor Int8Linear::operator()(const torch::Tensor& x) const {
  if (vnni_) return (*vnni_)(x);  // [..., out]
  auto sizes = x.sizes().vec();
  auto flat = x.reshape({-1, x.size(-1)});  // [N, in]
  const int64_t n = flat.size(0), in = flat.size(1), padded = padded_rows(n + 1);
  const float top = flat.abs().max().item<float>();
  const float bound = top > 0.0f ? std::exp2(std::ceil(std::log2(top))) : 1.0f;
  auto rows = flat.new_zeros({padded, in});  // [padded, in]
  rows.narrow(0, 0, n).copy_(flat);
  float* extra = rows.data_ptr<float>() + n * in;  // CPU, float, contiguous
  extra[0] = -bound;
  extra[in - 1] = bound;
  // reduce_range: 7-bit activations, so u8 x s8 pairs cannot saturate the
  // 16-bit sums of AVX2's vpmaddubsw (what quantize_dynamic passes too).
  auto y = call_op(linear_op(), {rows, packed_, true}).toTensor();  // [padded, out]
  sizes.back() = out_features_;
  return y.narrow(0, 0, n).view(sizes);  // [..., out]
}

}  // namespace aiayn
