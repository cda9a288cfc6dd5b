#include "models/packed_int8_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 headers build some results from _mm512_undefined_*() and
// warn that it is uninitialized in every caller; it is meant to be.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define AIAYN_VNNI_X86 1
#else
#define AIAYN_VNNI_X86 0
#endif

namespace aiayn {

namespace {

constexpr int64_t kWidth = 32;  // columns per panel: two registers of 16 int32 sums
constexpr int kMaxRows = 12;    // 24 accumulators, two weight registers, one broadcast

// Quantization of one input row: x * (127 / max|x|) rounded to the nearest
// (ties to even), +128 so that it is unsigned for vpdpbusd; the scale back
// is max|x| / 127. A zero row stays zero (every byte 128, scale 1).
struct RowScale {
  float inverse, scale;
};
RowScale row_scale(float amax) {
  if (!(amax > 0.0f)) return {0.0f, 1.0f};
  return {127.0f / amax, amax / 127.0f};
}

using Tile = void (*)(const uint8_t* x, int64_t in4, const int8_t* panel, const float* row_scales,
                      const float* scales, const int32_t* offset, const float* bias, float* out, int64_t ldo,
                      int64_t cols);

#if AIAYN_VNNI_X86
__attribute__((target("avx512f,avx512bw"))) float row_abs_max(const float* x, int64_t n) {
  __m512 m = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail, x + i)));
  }
  return _mm512_reduce_max_ps(m);
}

// One row to bytes; the padding up to in4 holds 128 (zero), against zero weights.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_row(const float* x, int64_t n, int64_t in4,
                                                                       float inverse, uint8_t* out) {
  const __m512 inv = _mm512_set1_ps(inverse);
  const __m512i shift = _mm512_set1_epi32(128);
  int64_t i = 0;
  for (; i < n; i += 16) {
    const int64_t left = std::min<int64_t>(16, n - i);
    const __mmask16 mask = left == 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    const __m512i q =
        _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inv)),
                         shift);  // in [1, 255]
    _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtepi32_epi8(q));
  }
  for (i = n; i < in4; ++i) out[i] = 128;
}

// acc += the four byte products of each lane (vpdpbusd, u8 x s8). Written as
// asm with acc in-out: GCC 12 compiles the intrinsic into a copy and a stack
// spill per call, which made the kernel only 1.5x the float one.
__attribute__((target("avx512f,avx512vnni"), always_inline)) inline __m512i dot4(__m512i acc, __m512i x,
                                                                                 __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
  return acc;
}

// `R` rows of bytes times one panel of 32 columns: int32 sums of four
// products per lane (vpdpbusd), then (sum - offset) * (row scale * column
// scale) + bias, into the first `cols` columns of out.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_vnni(
    const uint8_t* x, int64_t in4, const int8_t* panel, const float* row_scales, const float* scales,
    const int32_t* offset, const float* bias, float* out, int64_t ldo, int64_t cols) {
  __m512i acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
  for (int64_t g = 0; g < in4 / 4; ++g) {
    const __m512i w0 = _mm512_loadu_si512(panel + g * 128), w1 = _mm512_loadu_si512(panel + g * 128 + 64);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      int32_t four;
      __builtin_memcpy(&four, x + i * in4 + g * 4, 4);
      const __m512i xi = _mm512_set1_epi32(four);
      acc[i][0] = dot4(acc[i][0], xi, w0);
      acc[i][1] = dot4(acc[i][1], xi, w1);
    }
  }
  const __m512i o0 = _mm512_loadu_si512(offset), o1 = _mm512_loadu_si512(offset + 16);
  const __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);
  const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  for (int i = 0; i < R; ++i) {
    const __m512 rs = _mm512_set1_ps(row_scales[i]);
    const __m512 y0 =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], o0)), _mm512_mul_ps(rs, s0), b0);
    const __m512 y1 =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], o1)), _mm512_mul_ps(rs, s1), b1);
    _mm512_mask_storeu_ps(out + i * ldo, m0, y0);
    _mm512_mask_storeu_ps(out + i * ldo + 16, m1, y1);
  }
}

constexpr Tile kTiles[] = {nullptr,       tile_vnni<1>,  tile_vnni<2>, tile_vnni<3>, tile_vnni<4>,
                           tile_vnni<5>,  tile_vnni<6>,  tile_vnni<7>, tile_vnni<8>, tile_vnni<9>,
                           tile_vnni<10>, tile_vnni<11>, tile_vnni<12>};
#endif

}  // namespace

bool PackedInt8Linear::available() {
#if AIAYN_VNNI_X86
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return yes;
#else
  return false;
#endif
}

PackedInt8Linear::PackedInt8Linear(const torch::Tensor& weight, const torch::Tensor& bias)
    : in_(weight.size(1)), in4_((weight.size(1) + 3) / 4 * 4), out_(weight.size(0)) {
  TORCH_CHECK(available(), "PackedInt8Linear: this CPU lacks AVX-512 VNNI");
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();  // [out, in]
  const int64_t panels = (out_ + kWidth - 1) / kWidth;
  // Symmetric per output row: scale = max|w_row| / 127.
  auto amax = w.abs().amax(1);                                                      // [out]
  auto scale = torch::where(amax > 0, amax / 127.0f, torch::ones_like(amax));       // [out]
  auto q = torch::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8);  // [out, in]
  auto padded = torch::zeros({panels * kWidth, in4_}, torch::kInt8);                // [panels * 32, in4]
  padded.narrow(0, 0, out_).narrow(1, 0, in_).copy_(q);
  // [panels, 32, in4/4, 4] -> [panels, in4/4, 32, 4]: lane c of group g holds row c's inputs 4g..4g+3.
  panels_ = padded.view({panels, kWidth, in4_ / 4, 4}).permute({0, 2, 1, 3}).contiguous();
  scales_ = torch::ones({panels * kWidth});
  scales_.narrow(0, 0, out_).copy_(scale);
  offset_ = (padded.to(torch::kInt32).sum(1) * 128).to(torch::kInt32).contiguous();  // [panels * 32]
  bias_ = torch::zeros({panels * kWidth});
  if (bias.defined()) bias_.narrow(0, 0, out_).copy_(bias.detach().to(torch::kCPU, torch::kFloat));
}

torch::Tensor PackedInt8Linear::operator()(const torch::Tensor& x) const {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.size(-1) == in_,
              "PackedInt8Linear: expects float CPU input [..., ", in_, "], got ", x.sizes(), " ",
              x.scalar_type());
  auto flat = x.reshape({-1, in_}).contiguous();  // [M, in]
  const int64_t m = flat.size(0), panels = panels_.size(0);
  auto y = torch::empty({m, out_}, flat.options());  // [M, out]
  auto sizes = x.sizes().vec();
  sizes.back() = out_;
  if (m == 0) return y.view(sizes);
#if AIAYN_VNNI_X86
  auto bytes = torch::empty({m, in4_}, torch::kUInt8);  // [M, in4]
  auto row_scales = torch::empty({m});                  // [M]
  const float* xs = flat.data_ptr<float>();
  uint8_t* bs = bytes.data_ptr<uint8_t>();
  float* rs = row_scales.data_ptr<float>();
  for (int64_t r = 0; r < m; ++r) {
    const RowScale s = row_scale(row_abs_max(xs + r * in_, in_));
    rs[r] = s.scale;
    quantize_row(xs + r * in_, in_, in4_, s.inverse, bs + r * in4_);
  }
  const int8_t* ps = panels_.data_ptr<int8_t>();
  const float* ss = scales_.data_ptr<float>();
  const int32_t* os = offset_.data_ptr<int32_t>();
  const float* bias = bias_.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  const int64_t k = in4_, n = out_;
  const int64_t per_panel = m * k * kWidth;  // multiply-adds
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, per_panel));
  at::parallel_for(0, panels, grain, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      const int8_t* panel = ps + p * k * kWidth;
      const int64_t col = p * kWidth, cols = std::min(kWidth, n - col);
      for (int64_t r = 0; r < m; r += kMaxRows) {
        const int64_t rows = std::min<int64_t>(kMaxRows, m - r);
        kTiles[rows](bs + r * k, k, panel, rs + r, ss + col, os + col, bias + col, ys + r * n + col, n, cols);
      }
    }
  });
#endif
  return y.view(sizes);  // [..., out]
}

torch::Tensor PackedInt8Linear::reference(const torch::Tensor& x, const torch::Tensor& weight,
                                          const torch::Tensor& bias) {
  auto w = weight.to(torch::kFloat);                                                   // [out, in]
  auto w_amax = w.abs().amax(1);                                                       // [out]
  auto w_scale = torch::where(w_amax > 0, w_amax / 127.0f, torch::ones_like(w_amax));  // [out]
  auto wq = torch::round(w / w_scale.unsqueeze(1)).clamp(-127, 127);                   // [out, in]
  auto flat = x.reshape({-1, x.size(-1)}).to(torch::kFloat);                           // [M, in]
  auto x_amax = flat.abs().amax(1);                                                    // [M]
  auto positive = x_amax > 0;
  // 127 / max, divided as the kernel divides (a Scalar / Tensor would multiply by a reciprocal).
  auto inverse =
      torch::where(positive, torch::full_like(x_amax, 127.0f) / x_amax, torch::zeros_like(x_amax));  // [M]
  auto x_scale = torch::where(positive, x_amax / 127.0f, torch::ones_like(x_amax));                  // [M]
  auto xq = torch::round(flat * inverse.unsqueeze(1));  // [M, in]
  auto sums =
      torch::matmul(xq.to(torch::kDouble), wq.to(torch::kDouble).t()).to(torch::kFloat);  // [M, out]: exact
  auto y = sums * (x_scale.unsqueeze(1) * w_scale.unsqueeze(0));                          // [M, out]
  if (bias.defined()) y = y + bias.to(torch::kFloat);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return y.view(sizes);  // [..., out]
}

}  // namespace aiayn
